//===----------------------------------------------------------------------===//
// meshsim — Balancers
//===----------------------------------------------------------------------===//

public import SimCore

/// Envoy's panic threshold: when too few endpoints are healthy, balance across all of them, ignoring health.
///
/// Source: Envoy `healthy_panic_threshold` (`cluster.proto`, docs `panic_threshold.rst`; algorithms.md §1.7):
/// default 50%; 0 disables panic mode. A priority level's health is
/// `min(100, overprovisioning_factor × healthy / total)` with overprovisioning factor 1.4 (used to spill traffic
/// between priorities); the level is in panic when its percentage of healthy endpoints is below the threshold
/// (Envoy `isHostSetInPanic`). With panic disabled and no healthy endpoint, requests fail ("no healthy
/// upstream").
public struct PanicThreshold: Sendable, Equatable {
    /// The threshold in percent (0 disables panic mode).
    public let percent: Double
    /// Envoy's overprovisioning factor.
    public let overprovisioningFactor: Double

    /// Creates the threshold; throws for a percent outside [0, 100] or a factor below 1.
    public init(percent: Double = 50, overprovisioningFactor: Double = 1.4) throws(PolicyParameterError) {
        guard (0...100).contains(percent) else {
            throw PolicyParameterError("healthy_panic_threshold", "must be in [0, 100], not \(percent)")
        }
        guard overprovisioningFactor >= 1, overprovisioningFactor.isFinite else {
            throw PolicyParameterError("overprovisioning_factor", "must be ≥ 1")
        }
        self.percent = percent
        self.overprovisioningFactor = overprovisioningFactor
    }

    /// The health of a level (for spilling to lower priorities) with `healthy` of `total` endpoints healthy, in percent.
    public func health(healthy: Int, total: Int) -> Double {
        guard total > 0 else { return 0 }
        return min(100, overprovisioningFactor * Double(healthy) / Double(total) * 100)
    }

    /// Whether a level with `healthy` of `total` endpoints healthy is in panic (balance across all endpoints).
    public func isPanicking(healthy: Int, total: Int) -> Bool {
        guard percent > 0, total > 0 else { return false }
        return Double(healthy) * 100 / Double(total) < percent
    }
}
