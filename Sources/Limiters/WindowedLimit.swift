//===----------------------------------------------------------------------===//
// meshsim — Limiters
//===----------------------------------------------------------------------===//

public import SimCore

/// Aggregates samples into time windows and feeds the wrapped limit once per window.
///
/// Source: Netflix/concurrency-limits `concurrency-limits-core/…/limit/WindowedLimit.java` with the default average
/// window (`limit/window/ImmutableAverageSampleWindow.java`), reference section 5 ("WindowedLimit"). Defaults:
/// min RTT threshold 100 µs, window size 10 samples, min and max window time 1 s.
///
/// - A sample with `rtt < minRttThreshold` is ignored.
/// - Otherwise it is added to the current window (minimum RTT, sum of RTTs, maximum inflight, any drop, count).
/// - When the sample's end time `startTime + rtt` is later than the next update time, the window closes:
///   `nextUpdate = end + clamp(2 × windowMinRtt, minWindowTime, maxWindowTime)`, and if the window holds at least
///   `windowSize` samples the delegate gets one sample `(startTime, avgRtt, maxInflight, anyDrop)`, where `avgRtt` is
///   the integer mean in nanoseconds. The next update time starts at 0, so the very first sample closes a window.
///
/// Netflix also offers a percentile window; it is not modelled here.
public struct WindowedLimit<Delegate: ConcurrencyLimit>: ConcurrencyLimit {
    /// The window configuration (``WindowedLimitConfiguration``).
    public typealias Configuration = WindowedLimitConfiguration

    /// The configuration this wrapper runs.
    public let configuration: Configuration
    /// The wrapped limit algorithm.
    public private(set) var delegate: Delegate
    /// When the current window closes (a sample ending later closes it).
    public private(set) var nextUpdateTime = SimInstant.zero

    private var windowMinRTT = Int64.max
    private var windowSumRTT: Int64 = 0
    private var windowMaxInflight = 0
    private var windowDidDrop = false
    private var windowCount = 0

    /// Wraps `delegate`.
    public init(_ configuration: Configuration, wrapping delegate: Delegate) throws {
        try configuration.validate()
        self.configuration = configuration
        self.delegate = delegate
    }

    /// The delegate's current limit.
    public var limit: Int { delegate.limit }

    /// Samples in the window being filled.
    public var samplesInWindow: Int { windowCount }

    /// Adds one sample to the window and, when the window closes, feeds the delegate.
    ///
    /// - Complexity: O(1) plus one delegate call when a window closes; no allocation.
    public mutating func onSample(
        startTime: SimInstant,
        rtt: SimDuration,
        inflight: Int,
        didDrop: Bool,
        using rng: inout some RandomNumberGenerator
    ) {
        if rtt < configuration.minRttThreshold { return }
        let endTime = startTime + rtt
        windowMinRTT = min(windowMinRTT, rtt.nanoseconds)
        windowSumRTT = windowSumRTT &+ rtt.nanoseconds
        windowMaxInflight = max(windowMaxInflight, inflight)
        windowDidDrop = windowDidDrop || didDrop
        windowCount += 1
        guard endTime > nextUpdateTime else { return }

        let candidate = windowMinRTT
        let length = min(
            max(candidate > Int64.max / 2 ? Int64.max / 2 : candidate * 2, configuration.minWindowTime.nanoseconds),
            configuration.maxWindowTime.nanoseconds
        )
        nextUpdateTime = endTime + SimDuration(nanoseconds: length)
        let ready = windowMinRTT < Int64.max && windowCount >= configuration.windowSize
        let average = windowCount == 0 ? 0 : windowSumRTT / Int64(windowCount)
        let maxInflight = windowMaxInflight
        let drop = windowDidDrop
        windowMinRTT = .max
        windowSumRTT = 0
        windowMaxInflight = 0
        windowDidDrop = false
        windowCount = 0
        if ready {
            delegate.onSample(
                startTime: startTime,
                rtt: SimDuration(nanoseconds: average),
                inflight: maxInflight,
                didDrop: drop,
                using: &rng
            )
        }
    }
}

/// A validated ``WindowedLimit`` configuration with Netflix's defaults.
///
/// Source: the `WindowedLimit.Builder` defaults and preconditions in Netflix/concurrency-limits
/// `limit/WindowedLimit.java` (window size ≥ 10, window times ≥ 100 ms).
public struct WindowedLimitConfiguration: Sendable, Equatable {
    /// Samples faster than this are ignored (`min_rtt_threshold`, default 100 µs, ≥ 0).
    public var minRttThreshold: SimDuration
    /// A window needs this many samples to reach the delegate (`window_size`, default 10, ≥ 10 as in Netflix).
    public var windowSize: Int
    /// The shortest window (`min_window_time`, default 1 s, ≥ 100 ms as in Netflix).
    public var minWindowTime: SimDuration
    /// The longest window (`max_window_time`, default 1 s, ≥ 100 ms and ≥ `min_window_time`).
    public var maxWindowTime: SimDuration

    /// Creates a configuration; throws `PolicyParameterError` for impossible values.
    public init(
        minRttThreshold: SimDuration = .microseconds(100),
        windowSize: Int = 10,
        minWindowTime: SimDuration = .seconds(1),
        maxWindowTime: SimDuration = .seconds(1)
    ) throws {
        self.minRttThreshold = minRttThreshold
        self.windowSize = windowSize
        self.minWindowTime = minWindowTime
        self.maxWindowTime = maxWindowTime
        try validate()
    }

    /// Throws `PolicyParameterError` naming the first impossible field.
    public func validate() throws {
        if minRttThreshold < .zero { throw PolicyParameterError("min_rtt_threshold", "must not be negative") }
        if windowSize < 10 { throw PolicyParameterError("window_size", "must be at least 10 (got \(windowSize))") }
        if minWindowTime < .milliseconds(100) {
            throw PolicyParameterError("min_window_time", "must be at least 100ms")
        }
        if maxWindowTime < .milliseconds(100) {
            throw PolicyParameterError("max_window_time", "must be at least 100ms")
        }
        if minWindowTime > maxWindowTime {
            throw PolicyParameterError("min_window_time", "must not exceed max_window_time")
        }
    }
}
