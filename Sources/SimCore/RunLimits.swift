//===----------------------------------------------------------------------===//
// meshsim — SimCore
//===----------------------------------------------------------------------===//

/// The limits a run's length and time-series window obey wherever they are given: in a scenario file or as a flag of
/// `run`, `serve`, `load` or `live`, so that a value refused in one place is refused in the other.
public enum RunLimits {
    /// A run's duration: from 1 ns to 365 days (8760 h).
    public static let duration: ClosedRange<SimDuration> = .nanoseconds(1)...SimDuration.year
    /// A time-series window: from 1 ms to 24 h.
    public static let window: ClosedRange<SimDuration> = .milliseconds(1)...SimDuration.seconds(3600 * 24)
    /// The most time-series rows (windows) one replication may have.
    public static let maxWindows: Int64 = 10_000_000
    /// ``maxWindows`` as messages write it.
    public static let maxWindowsText = "10,000,000"

    /// Why `window` cannot go with a run of `duration` (out of ``window``, or more than ``maxWindows`` rows), or
    /// `nil` when it can.
    public static func windowProblem(window: SimDuration, duration: SimDuration) -> String? {
        guard RunLimits.window.contains(window) else {
            return "window \(window.formatted) is out of range: expected a duration in "
                + "[\(RunLimits.window.lowerBound.formatted), \(RunLimits.window.upperBound.formatted)]"
        }
        if duration.nanoseconds / window.nanoseconds > maxWindows {
            return "window \(window.formatted) gives more than \(maxWindowsText) rows for a duration of "
                + "\(duration.formatted); use a wider window"
        }
        return nil
    }
}
