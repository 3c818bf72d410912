//===----------------------------------------------------------------------===//
// meshsim — Balancers
//===----------------------------------------------------------------------===//

public import SimCore

/// Envoy's zone-aware routing: keep traffic in the caller's zone as far as the upstream's capacity there allows.
///
/// Source: Envoy docs `zone_aware.rst` (algorithms.md §1.8). Let `L_o` be the local zone's share of the
/// *originating* cluster's healthy hosts and `L_u` its share of the *upstream* cluster's. If `L_u ≥ L_o` every
/// request stays local; otherwise `L_u / L_o` of them do, and the rest go to other zones in proportion to their
/// residual capacity (upstream share minus originating share, where positive). Preconditions: routing enabled
/// (default 100%), the same number of zones on both sides, at least `min_cluster_size` (default 6) upstream hosts,
/// and neither side in panic — otherwise the caller balances over all zones.
public struct ZoneAwareRouting: Sendable, Equatable {
    /// The percentage of requests to which zone-aware routing applies.
    public let routingEnabledPercent: Double
    /// The smallest upstream cluster for which it applies.
    public let minClusterSize: Int

    /// Creates the settings; throws for a percent outside [0, 100] or a negative size.
    public init(routingEnabledPercent: Double = 100, minClusterSize: Int = 6) throws(PolicyParameterError) {
        guard (0...100).contains(routingEnabledPercent) else {
            throw PolicyParameterError("routing_enabled", "must be in [0, 100]")
        }
        guard minClusterSize >= 0 else { throw PolicyParameterError("min_cluster_size", "must be ≥ 0") }
        self.routingEnabledPercent = routingEnabledPercent
        self.minClusterSize = minClusterSize
    }

    /// Chooses the zone for one request, or `nil` to balance over all zones.
    ///
    /// - Parameters:
    ///   - local: the caller's zone index.
    ///   - originating: healthy hosts of the calling cluster per zone.
    ///   - upstream: healthy hosts of the called cluster per zone (same zone order).
    /// - Complexity: O(zones), no allocation.
    public func chooseZone(
        local: Int,
        originating: UnsafeBufferPointer<Int>,
        upstream: UnsafeBufferPointer<Int>,
        using rng: inout some RandomNumberGenerator
    ) -> Int? {
        guard originating.count == upstream.count, local >= 0, local < upstream.count else { return nil }
        var upstreamTotal = 0
        var originatingTotal = 0
        for z in 0..<upstream.count {
            upstreamTotal += upstream[z]
            originatingTotal += originating[z]
        }
        guard upstreamTotal >= max(minClusterSize, 1), originatingTotal > 0 else { return nil }
        if routingEnabledPercent < 100 && uniformUnit(using: &rng) * 100 >= routingEnabledPercent { return nil }
        let localOriginating = Double(originating[local]) / Double(originatingTotal)
        let localUpstream = Double(upstream[local]) / Double(upstreamTotal)
        if localUpstream >= localOriginating { return local }
        if uniformUnit(using: &rng) < localUpstream / localOriginating { return local }
        // Cross-zone: in proportion to residual capacity.
        var residualTotal = 0.0
        for z in 0..<upstream.count where z != local {
            residualTotal += max(
                0,
                Double(upstream[z]) / Double(upstreamTotal) - Double(originating[z]) / Double(originatingTotal)
            )
        }
        guard residualTotal > 0 else { return nil }
        var x = uniformUnit(using: &rng) * residualTotal
        for z in 0..<upstream.count where z != local {
            let residual = max(
                0,
                Double(upstream[z]) / Double(upstreamTotal) - Double(originating[z]) / Double(originatingTotal)
            )
            x -= residual
            if x < 0 && residual > 0 { return z }
        }
        return nil
    }
}
