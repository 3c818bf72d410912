//===----------------------------------------------------------------------===//
// meshsim — Limiters
//===----------------------------------------------------------------------===//

public import SimCore

/// Gradient-based concurrency limit: compares the current RTT with a long-term exponential average.
///
/// Source: Netflix/concurrency-limits `concurrency-limits-core/…/limit/Gradient2Limit.java` (the class Javadoc gives
/// the formula) and `limit/measurement/ExpAvgMeasurement.java` (reference section 5.4). Defaults: initial limit 20,
/// min limit 20, max concurrency 200, smoothing 0.2, queue size 4 (constant), long window 600, RTT tolerance 1.5.
///
/// On each sample, with `shortRtt` the sample's RTT (usually a window average, see ``WindowedLimit``):
/// 1. `longRtt` is updated: the plain mean of the first 10 samples, then an EMA with factor `2 / (longWindow + 1)`.
/// 2. If `longRtt / shortRtt > 2`, the stored long RTT is multiplied by 0.95 (faster recovery after overload);
///    this sample's gradient still uses the value from step 1. During the 10-sample warm-up the next mean
///    overwrites that reduction, as in Netflix.
/// 3. If `inflight < limit / 2`, nothing else changes (app-limited).
/// 4. `gradient = clamp(rttTolerance × longRtt / shortRtt, 0.5, 1.0)`; `new = limit × gradient + queueSize`;
///    `new = limit × (1 − smoothing) + new × smoothing`; clamp to `[minLimit, maxConcurrency]`.
///
/// `didDrop` is ignored, as in Netflix (concurrency-limits issue #176). A sample with `rtt ≤ 0` is ignored (the
/// Java code would divide by zero). The limit is kept as a `Double` and exposed truncated to an integer.
public struct Gradient2Limit: ConcurrencyLimit {
    /// A validated Gradient2 configuration with Netflix's defaults.
    public struct Configuration: Sendable, Equatable {
        /// The limit before any sample (`initial_limit`, default 20).
        public var initialLimit: Int
        /// The lowest limit (`min_limit`, default 20).
        public var minLimit: Int
        /// The highest limit (`max_concurrency`, default 200).
        public var maxConcurrency: Int
        /// Weight of the new estimate (`smoothing`, default 0.2, in (0, 1]).
        public var smoothing: Double
        /// The growth allowance added to the scaled limit (`queue_size`, default 4, ≥ 0).
        public var queueSize: Double
        /// The long RTT's EMA window in samples (`long_window`, default 600, ≥ 1).
        public var longWindow: Int
        /// The RTT increase tolerated before the limit falls (`rtt_tolerance`, default 1.5, ≥ 1).
        public var rttTolerance: Double

        /// Creates a configuration; throws `PolicyParameterError` for impossible values.
        public init(
            initialLimit: Int = 20,
            minLimit: Int = 20,
            maxConcurrency: Int = 200,
            smoothing: Double = 0.2,
            queueSize: Double = 4,
            longWindow: Int = 600,
            rttTolerance: Double = 1.5
        ) throws {
            self.initialLimit = initialLimit
            self.minLimit = minLimit
            self.maxConcurrency = maxConcurrency
            self.smoothing = smoothing
            self.queueSize = queueSize
            self.longWindow = longWindow
            self.rttTolerance = rttTolerance
            try validate()
        }

        /// Throws `PolicyParameterError` naming the first impossible field.
        public func validate() throws {
            if minLimit < 1 { throw PolicyParameterError("min_limit", "must be at least 1 (got \(minLimit))") }
            if maxConcurrency > Int(Int32.max) {
                throw PolicyParameterError("max_concurrency", "must fit a 32-bit integer, as Netflix's limits do")
            }
            if minLimit > maxConcurrency {
                throw PolicyParameterError(
                    "min_limit",
                    "must not exceed max_concurrency (\(minLimit) > \(maxConcurrency))"
                )
            }
            if initialLimit < minLimit || initialLimit > maxConcurrency {
                throw PolicyParameterError(
                    "initial_limit",
                    "must be within [min_limit, max_concurrency] (got \(initialLimit))"
                )
            }
            if !(smoothing > 0 && smoothing <= 1) {
                throw PolicyParameterError("smoothing", "must be in (0, 1] (got \(smoothing))")
            }
            if !(queueSize >= 0 && queueSize.isFinite) {
                throw PolicyParameterError("queue_size", "must be a finite number ≥ 0 (got \(queueSize))")
            }
            if longWindow < 1 { throw PolicyParameterError("long_window", "must be at least 1 (got \(longWindow))") }
            if !(rttTolerance >= 1 && rttTolerance.isFinite) {
                throw PolicyParameterError("rtt_tolerance", "must be a finite number ≥ 1 (got \(rttTolerance))")
            }
        }
    }

    /// The number of samples averaged plainly before the long RTT becomes an EMA.
    public static let warmupSamples = 10

    /// The configuration this limit runs.
    public let configuration: Configuration
    /// The estimated limit, before truncation.
    public private(set) var estimatedLimit: Double
    /// The long-term RTT in nanoseconds (0 before the first sample).
    public private(set) var longRTT: Double = 0
    private var warmupSum: Double = 0
    private var warmupCount = 0

    /// Creates the limit at its initial value.
    public init(_ configuration: Configuration) throws {
        try configuration.validate()
        self.configuration = configuration
        estimatedLimit = Double(configuration.initialLimit)
    }

    /// The current concurrency limit, `⌊estimatedLimit⌋`.
    public var limit: Int { Int(estimatedLimit) }

    /// Feeds one sample (the Netflix shape; Gradient2 draws no random numbers).
    ///
    /// - Complexity: O(1); no allocation.
    public mutating func onSample(startTime: SimInstant, rtt: SimDuration, inflight: Int, didDrop: Bool) {
        guard rtt > .zero else { return }
        let shortRTT = Double(rtt.nanoseconds)
        let longRTT = addToLongRTT(shortRTT)
        if longRTT / shortRTT > 2 {
            self.longRTT = self.longRTT * 0.95
        }
        let current = estimatedLimit
        if Double(inflight) < current / 2 { return }
        let gradient = max(0.5, min(1.0, configuration.rttTolerance * longRTT / shortRTT))
        var next = current * gradient + configuration.queueSize
        next = current * (1 - configuration.smoothing) + next * configuration.smoothing
        estimatedLimit = max(Double(configuration.minLimit), min(Double(configuration.maxConcurrency), next))
    }

    /// Feeds one sample; `rng` is not used.
    ///
    /// - Complexity: O(1); no allocation.
    public mutating func onSample(
        startTime: SimInstant,
        rtt: SimDuration,
        inflight: Int,
        didDrop: Bool,
        using rng: inout some RandomNumberGenerator
    ) {
        onSample(startTime: startTime, rtt: rtt, inflight: inflight, didDrop: didDrop)
    }

    /// Adds a sample to the long RTT (mean during warm-up, then EMA) and returns the new value.
    private mutating func addToLongRTT(_ sample: Double) -> Double {
        if warmupCount < Self.warmupSamples {
            warmupCount += 1
            warmupSum += sample
            longRTT = warmupSum / Double(warmupCount)
        } else {
            let factor = 2 / (Double(configuration.longWindow) + 1)
            longRTT = longRTT * (1 - factor) + sample * factor
        }
        return longRTT
    }
}
