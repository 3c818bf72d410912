//===----------------------------------------------------------------------===//
// meshsim — Balancers
//===----------------------------------------------------------------------===//

public import SimCore

/// Envoy's slow start: a new endpoint's weight ramps up over a window.
///
/// `time_factor = max(1 ms, time since ready) / window`; `weight × max(min_weight_percent, time_factor^(1/aggression))`
/// while the endpoint is inside the window. Defaults: aggression 1.0 (a linear ramp), min_weight_percent 10%.
/// Source: Envoy `SlowStartConfig` in `common.proto` (algorithms.md §1.6).
public struct SlowStart: Sendable, Equatable {
    /// How long a new endpoint ramps up.
    public var window: SimDuration
    /// The ramp's shape: 1 is linear, larger ramps faster at first.
    public var aggression: Double
    /// The smallest fraction of its weight a new endpoint gets, in percent.
    public var minWeightPercent: Double

    /// Creates the settings; throws for a window ≤ 0, aggression ≤ 0 or a percent outside [0, 100].
    public init(window: SimDuration, aggression: Double = 1.0, minWeightPercent: Double = 10)
        throws(PolicyParameterError)
    {
        guard window > .zero else { throw PolicyParameterError("slow_start_window", "must be positive") }
        guard aggression > 0, aggression.isFinite else { throw PolicyParameterError("aggression", "must be > 0") }
        guard (0...100).contains(minWeightPercent) else {
            throw PolicyParameterError("min_weight_percent", "must be in [0, 100]")
        }
        self.window = window
        self.aggression = aggression
        self.minWeightPercent = minWeightPercent
    }

    /// Whether an endpoint ready since `readySince` is still ramping at `now`.
    @inlinable
    public func isRamping(readySince: SimInstant, at now: SimInstant) -> Bool {
        now - readySince < window
    }

    /// The effective weight of an endpoint with weight `weight`, ready since `readySince`, at `now`.
    ///
    /// - Complexity: O(1).
    public func effectiveWeight(_ weight: Double, readySince: SimInstant, at now: SimInstant) -> Double {
        let age = now - readySince
        guard age < window else { return weight }
        let factor = Double(max(age.nanoseconds, 1_000_000)) / Double(window.nanoseconds)
        let ramp = aggression == 1 ? factor : SimMath.pow(factor, 1 / aggression)
        return weight * max(minWeightPercent / 100, ramp)
    }
}

/// What a weighted balancer caches about its endpoint set between changes: whether all weights are equal, and
/// until when some endpoint is still in slow start — so a pick need not scan every endpoint.
struct WeightShape: Sendable {
    /// The number of endpoints described (-1: nothing cached).
    var count = -1
    /// Whether every endpoint has the same weight.
    var uniformWeights = true
    /// The end of the last slow-start window, if any endpoint is in slow start.
    var rampingUntil: SimInstant?

    init() {}

    /// Describes `endpoints`.
    ///
    /// - Complexity: O(n); done once per endpoint change.
    init(_ endpoints: UnsafeBufferPointer<EndpointState>, slowStart: SlowStart?) {
        count = endpoints.count
        let first = endpoints.first?.weight ?? 1
        for e in endpoints {
            if e.weight != first { uniformWeights = false }
            if let slowStart {
                let end = e.readySince + slowStart.window
                rampingUntil = max(rampingUntil ?? end, end)
            }
        }
    }
}
