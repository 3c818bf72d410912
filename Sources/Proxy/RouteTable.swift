//===----------------------------------------------------------------------===//
// meshsim — Proxy
//===----------------------------------------------------------------------===//

/// The routes of a proxy, ready for matching: first match by host and path prefix, then a weighted draw between
/// the route's clusters (Envoy's `weighted_clusters`).
public struct RouteTable: Sendable {
    /// One route with its cumulative weights.
    struct Entry: Sendable {
        var host: [UInt8]?
        var pathPrefix: [UInt8]?
        var clusters: [Int]
        /// Cumulative weights, normalised to end at 1.
        var cumulative: [Double]
    }

    let entries: [Entry]

    /// Builds the table of `routes` (weights must be positive, as ``ProxyConfiguration/validate()`` checks).
    public init(_ routes: [ProxyRoute]) {
        entries = routes.map { route in
            let total = route.targets.reduce(0) { $0 + $1.weight }
            var running = 0.0
            var cumulative: [Double] = []
            for target in route.targets {
                running += target.weight
                cumulative.append(total > 0 ? running / total : 1)
            }
            if !cumulative.isEmpty { cumulative[cumulative.count - 1] = 1 }
            return Entry(
                host: route.host.map { Array($0.lowercased().utf8) },
                pathPrefix: route.pathPrefix.map { Array($0.utf8) },
                clusters: route.targets.map(\.cluster),
                cumulative: cumulative
            )
        }
    }

    /// The index of the first route that takes a request for `host` (its `Host` value, any port ignored) and
    /// `path`, or `nil` (a 404).
    ///
    /// - Complexity: O(routes × prefix length), no allocation.
    public func match(host: some Collection<UInt8>, path: some Collection<UInt8>) -> Int? {
        // The host without its port: up to the last colon outside an IPv6 literal's brackets.
        var hostEnd = host.endIndex
        var i = host.startIndex
        var inBrackets = false
        while i != host.endIndex {
            let byte = host[i]
            if byte == 91 { inBrackets = true }
            if byte == 93 { inBrackets = false }
            if byte == 58 && !inBrackets { hostEnd = i }
            i = host.index(after: i)
        }
        let bareHost = host[host.startIndex..<hostEnd]
        for (index, entry) in entries.enumerated() {
            if let wanted = entry.host {
                guard bareHost.count == wanted.count,
                    zip(bareHost, wanted).allSatisfy({ ($0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0) == $1 })
                else { continue }
            }
            if let prefix = entry.pathPrefix {
                guard path.count >= prefix.count, zip(path, prefix).allSatisfy({ $0 == $1 }) else { continue }
            }
            return index
        }
        return nil
    }

    /// The cluster of route `route` for one request: the only one, or one drawn by weight from `rng`.
    ///
    /// - Complexity: O(clusters of the route); one draw when there are several.
    public func cluster(route: Int, using rng: inout some RandomNumberGenerator) -> Int {
        let entry = entries[route]
        if entry.clusters.count == 1 { return entry.clusters[0] }
        let u = Double(rng.next() >> 11) * 0x1p-53
        for (i, bound) in entry.cumulative.enumerated() where u < bound { return entry.clusters[i] }
        return entry.clusters[entry.clusters.count - 1]
    }
}
