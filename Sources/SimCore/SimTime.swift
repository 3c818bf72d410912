//===----------------------------------------------------------------------===//
// meshsim — SimCore
//===----------------------------------------------------------------------===//

/// A span of simulated (or wall) time, in integer nanoseconds.
///
/// Time is never a `Double`: integer nanoseconds keep event ties exact and runs reproducible, as in ns-3 and
/// `NIODeadline`.
public struct SimDuration: Hashable, Comparable, Sendable {
    /// The span in nanoseconds.
    public var nanoseconds: Int64

    /// Creates a span of `nanoseconds` nanoseconds.
    @inlinable public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// The zero span.
    public static let zero = SimDuration(nanoseconds: 0)

    /// A span of `value` nanoseconds.
    @inlinable public static func nanoseconds(_ value: Int64) -> SimDuration { SimDuration(nanoseconds: value) }
    /// A span of `value` microseconds.
    @inlinable public static func microseconds(_ value: Int64) -> SimDuration {
        SimDuration(nanoseconds: value * 1_000)
    }
    /// A span of `value` milliseconds.
    @inlinable public static func milliseconds(_ value: Int64) -> SimDuration {
        SimDuration(nanoseconds: value * 1_000_000)
    }
    /// A span of `value` seconds.
    @inlinable public static func seconds(_ value: Int64) -> SimDuration {
        SimDuration(nanoseconds: value * 1_000_000_000)
    }
    /// A span of `value` (fractional) seconds, rounded to the nearest nanosecond and clamped to the representable range.
    @inlinable public static func seconds(fractional value: Double) -> SimDuration {
        SimDuration(nanoseconds: clampToNanoseconds(value * 1e9))
    }

    /// The span in seconds, as a `Double` (for reporting only).
    @inlinable public var seconds: Double { Double(nanoseconds) / 1e9 }
    /// The span in milliseconds, as a `Double` (for reporting only).
    @inlinable public var milliseconds: Double { Double(nanoseconds) / 1e6 }

    @inlinable public static func < (lhs: SimDuration, rhs: SimDuration) -> Bool { lhs.nanoseconds < rhs.nanoseconds }
    @inlinable public static func + (lhs: SimDuration, rhs: SimDuration) -> SimDuration {
        SimDuration(nanoseconds: lhs.nanoseconds &+ rhs.nanoseconds)
    }
    @inlinable public static func - (lhs: SimDuration, rhs: SimDuration) -> SimDuration {
        SimDuration(nanoseconds: lhs.nanoseconds &- rhs.nanoseconds)
    }
}

extension SimDuration {
    /// The longest duration a scenario file or a flag may give: 8,760 hours (365 days).
    public static let year = SimDuration.seconds(3600 * 24 * 365)

    /// The longest span the model represents: 2^56 ns, about 834 days, longer than any run (at most a year plus its
    /// drain, itself at most a year).
    ///
    /// Every duration computed from a `Double` (a draw from a distribution, a service time divided by a speed, a
    /// backoff) is clamped to it by ``clampToNanoseconds(_:)``, and every configured duration is at most ``year``,
    /// so the clock plus a sum of up to 127 such spans stays below `Int64.max`: the model's integer arithmetic on
    /// times cannot overflow, and a draw this long simply never finishes within the run.
    public static let horizon = SimDuration(nanoseconds: 1 << 56)
}

/// Rounds a `Double` count of nanoseconds to `Int64`, clamping NaN to 0 and values beyond
/// ``SimDuration/horizon`` (either sign) to it.
@inlinable
public func clampToNanoseconds(_ value: Double) -> Int64 {
    if value.isNaN { return 0 }
    if value >= 7.2057594037927936e16 { return 1 << 56 }
    if value <= -7.2057594037927936e16 { return -(1 << 56) }
    return Int64(value.rounded())
}

/// A point in simulated time: integer nanoseconds since the start of the scenario.
public struct SimInstant: Hashable, Comparable, Sendable {
    /// Nanoseconds since the start of the scenario.
    public var nanoseconds: Int64

    /// Creates the instant `nanoseconds` after the start.
    @inlinable public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// The start of the scenario.
    public static let zero = SimInstant(nanoseconds: 0)
    /// An instant later than any a run reaches.
    public static let distantFuture = SimInstant(nanoseconds: Int64.max / 2)

    @inlinable public static func < (lhs: SimInstant, rhs: SimInstant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }
    @inlinable public static func + (lhs: SimInstant, rhs: SimDuration) -> SimInstant {
        SimInstant(nanoseconds: lhs.nanoseconds &+ rhs.nanoseconds)
    }
    @inlinable public static func - (lhs: SimInstant, rhs: SimInstant) -> SimDuration {
        SimDuration(nanoseconds: lhs.nanoseconds &- rhs.nanoseconds)
    }
    /// Seconds since the start, as a `Double` (for reporting only).
    @inlinable public var seconds: Double { Double(nanoseconds) / 1e9 }
}
