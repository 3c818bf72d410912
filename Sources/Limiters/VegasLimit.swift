//===----------------------------------------------------------------------===//
// meshsim — Limiters
//===----------------------------------------------------------------------===//

public import SimCore

/// Delay-based concurrency limit after TCP Vegas: estimates the queue from the RTT against the no-load RTT.
///
/// Source: Netflix/concurrency-limits `concurrency-limits-core/…/limit/VegasLimit.java` and
/// `limit/functions/Log10RootFunction.java` (reference section 5.2); it is that library's default limit.
/// Defaults: initial limit 20, max concurrency 1000, smoothing 1.0, probe multiplier 30.
/// With `L(x) = max(1, ⌊log10 x⌋)`: `alpha = 3·L(limit)`, `beta = 6·L(limit)`, `threshold = L(limit)`,
/// `increase(l) = l + L(l)`, `decrease(l) = l − L(l)` (the integer part of the limit is passed to `L`).
///
/// On each sample, in this order:
/// 1. `probeCount += 1`; if `probeCount ≥ jitter × probeMultiplier × limit` (jitter uniform in [0.5, 1), redrawn at
///    each probe), then `rtt_noload = rtt` (a forced re-baseline), the count resets, and the sample is skipped.
/// 2. If `rtt_noload` is unset or `rtt < rtt_noload`: `rtt_noload = rtt` and the sample is skipped.
/// 3. `queue = ⌈limit × (1 − rtt_noload / rtt)⌉`; then: on a drop, `new = decrease(limit)`; else if
///    `inflight × 2 < limit`, no change (app-limited); else if `queue ≤ threshold`, `new = limit + beta`; else if
///    `queue < alpha`, `new = increase(limit)`; else if `queue > beta`, `new = decrease(limit)`; else no change.
/// 4. `new = clamp(new, 1, maxConcurrency)` and `limit = (1 − smoothing)·limit + smoothing·new`.
///
/// The limit is kept as a `Double` and exposed truncated to an integer. Netflix draws the first jitter when the limit
/// is built; this model draws it from `rng` at the first sample, so construction needs no generator. A sample with
/// `rtt ≤ 0` is ignored (Netflix rejects it with an exception).
public struct VegasLimit: ConcurrencyLimit {
    /// A validated Vegas configuration with Netflix's defaults.
    public struct Configuration: Sendable, Equatable {
        /// The limit before any sample (`initial_limit`, default 20).
        public var initialLimit: Int
        /// The highest limit (`max_concurrency`, default 1000).
        public var maxConcurrency: Int
        /// Weight of the new estimate (`smoothing`, default 1.0, in (0, 1]).
        public var smoothing: Double
        /// A probe comes every `jitter × probeMultiplier × limit` samples (`probe_multiplier`, default 30, ≥ 1).
        public var probeMultiplier: Int

        /// Creates a configuration; throws `PolicyParameterError` for impossible values.
        public init(
            initialLimit: Int = 20,
            maxConcurrency: Int = 1000,
            smoothing: Double = 1.0,
            probeMultiplier: Int = 30
        ) throws {
            self.initialLimit = initialLimit
            self.maxConcurrency = maxConcurrency
            self.smoothing = smoothing
            self.probeMultiplier = probeMultiplier
            try validate()
        }

        /// Throws `PolicyParameterError` naming the first impossible field.
        public func validate() throws {
            if maxConcurrency < 1 {
                throw PolicyParameterError("max_concurrency", "must be at least 1 (got \(maxConcurrency))")
            }
            if maxConcurrency > Int(Int32.max) {
                throw PolicyParameterError("max_concurrency", "must fit a 32-bit integer, as Netflix's limits do")
            }
            if initialLimit < 1 || initialLimit > maxConcurrency {
                throw PolicyParameterError("initial_limit", "must be within [1, max_concurrency] (got \(initialLimit))")
            }
            if !(smoothing > 0 && smoothing <= 1) {
                throw PolicyParameterError("smoothing", "must be in (0, 1] (got \(smoothing))")
            }
            if probeMultiplier < 1 {
                throw PolicyParameterError("probe_multiplier", "must be at least 1 (got \(probeMultiplier))")
            }
        }
    }

    /// The configuration this limit runs.
    public let configuration: Configuration
    /// The estimated limit, before truncation.
    public private(set) var estimatedLimit: Double
    /// The no-load RTT baseline, or `nil` before the first sample.
    public private(set) var noLoadRTT: SimDuration?
    /// Samples since the last probe.
    public private(set) var probeCount = 0
    /// The current probe jitter in [0.5, 1), or `nil` until the first sample draws it.
    public private(set) var probeJitter: Double?

    /// Creates the limit at its initial value.
    public init(_ configuration: Configuration) throws {
        try configuration.validate()
        self.configuration = configuration
        estimatedLimit = Double(configuration.initialLimit)
    }

    /// The current concurrency limit, `⌊estimatedLimit⌋`.
    public var limit: Int { Int(estimatedLimit) }

    /// `L(x) = max(1, ⌊log10 x⌋)`, computed exactly on integers.
    public static func log10Floor(_ x: Int) -> Int {
        var digits = 0
        var rest = x
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        return max(1, digits)
    }

    /// Feeds one sample; draws the probe jitter from `rng` at the first sample and at each probe.
    ///
    /// - Complexity: O(1); no allocation.
    public mutating func onSample(
        startTime: SimInstant,
        rtt: SimDuration,
        inflight: Int,
        didDrop: Bool,
        using rng: inout some RandomNumberGenerator
    ) {
        guard rtt > .zero else { return }
        let jitter = probeJitter ?? Self.drawJitter(using: &rng)
        probeJitter = jitter
        probeCount += 1
        if jitter * Double(configuration.probeMultiplier) * estimatedLimit <= Double(probeCount) {
            probeJitter = Self.drawJitter(using: &rng)
            probeCount = 0
            noLoadRTT = rtt
            return
        }
        guard let noLoad = noLoadRTT, rtt >= noLoad else {
            noLoadRTT = rtt
            return
        }
        update(rtt: rtt, noLoad: noLoad, inflight: inflight, didDrop: didDrop)
    }

    private mutating func update(rtt: SimDuration, noLoad: SimDuration, inflight: Int, didDrop: Bool) {
        let current = estimatedLimit
        let queue = (current * (1 - Double(noLoad.nanoseconds) / Double(rtt.nanoseconds))).rounded(.up)
        let log = Double(Self.log10Floor(Int(current)))
        var next: Double
        if didDrop {
            next = current - log
        } else if Double(inflight) * 2 < current {
            return
        } else {
            let alpha = 3 * log
            let beta = 6 * log
            let threshold = log
            if queue <= threshold {
                next = current + beta
            } else if queue < alpha {
                next = current + log
            } else if queue > beta {
                next = current - log
            } else {
                return
            }
        }
        next = max(1, min(Double(configuration.maxConcurrency), next))
        estimatedLimit = (1 - configuration.smoothing) * current + configuration.smoothing * next
    }

    /// A jitter uniform in [0.5, 1).
    private static func drawJitter(using rng: inout some RandomNumberGenerator) -> Double {
        0.5 + 0.5 * uniformUnit(using: &rng)
    }
}
