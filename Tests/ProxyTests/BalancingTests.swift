import Balancers
import Foundation
import Live
import NIOCore
import Proxy
import SimCore
import SimRandom
import Spec
import Testing

/// Runs `count` blocking clients on their own threads (not the test's cooperative pool) and waits for them all.
func concurrently(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let group = DispatchGroup()
        for i in 0..<count {
            group.enter()
            Thread {
                body(i)
                group.leave()
            }.start()
        }
        group.notify(queue: .global()) { continuation.resume() }
    }
}

@Suite("Proxy balancing", .timeLimit(.minutes(1)))
struct BalancingTests {
    /// The balancers whose picks do not depend on latencies: one request at a time, the proxy must pick exactly as
    /// the module does with the same seeded stream.
    static let latencyFree: [BalancerKind] = BalancerKind.allCases.filter { $0 != .p2cPeakEwma }

    @Test("one request at a time, the proxy's picks equal the module's own at the same seed", arguments: latencyFree)
    func sequentialPicksMatchTheModule(_ kind: BalancerKind) async throws {
        let weights: [Int32] = [1, 2, 3, 4]
        let requests = 120
        // The module alone, driven as the proxy's first event loop drives it.
        var spec = BalancerSpec(kind)
        spec.tableSize = 251
        spec.minimumRingSize = 64
        var balancer = BalancerBox(spec, endpointCapacity: weights.count)
        var endpoints = weights.enumerated().map { EndpointState(index: Int32($0), weight: $1) }
        balancer.endpointsChanged()
        var random = RandomStream(seed: 11, replication: 0, key: "proxy/0/default/balancer")
        var expected = [0, 0, 0, 0]
        for _ in 0..<requests {
            let choice = endpoints.withUnsafeBufferPointer { buffer in
                balancer.pick(from: buffer, at: .zero, using: &random)
            }
            let pick = try #require(choice)
            expected[pick] += 1
            endpoints[pick].active += 1
            endpoints[pick].active -= 1
        }

        try await withBackends(replicas(4)) { addresses, _ in
            var configuration = oneCluster(addresses, kind)
            configuration.clusters[0].weights = weights
            configuration.clusters[0].balancer = spec
            configuration.seed = 11
            try await withProxy(configuration) { server, port in
                let client = try RawClient(port: port)
                for _ in 0..<requests {
                    client.send(get())
                    #expect(client.readResponse()?.status == 200)
                }
                let report = try await server.endpoints().get()
                let observed = report.clusters[0].endpoints.map(\.requests)
                #expect(observed == expected, "\(kind.rawValue)")
                #expect(observed.reduce(0, +) == requests)
            }
        }
    }

    @Test("with several event loops each balances on its own; /endpoints sums them")
    func severalLoops() async throws {
        try await withBackends(replicas(3)) { addresses, _ in
            var configuration = oneCluster(addresses, .leastRequest)
            configuration.threads = 3
            try await withProxy(configuration) { server, port in
                await concurrently(6) { _ in
                    guard let client = try? RawClient(port: port) else { return }
                    for _ in 0..<20 {
                        client.send(get())
                        _ = client.readResponse()
                    }
                }
                let endpoints = try await server.endpoints().get().clusters[0].endpoints
                #expect(endpoints.map(\.requests).reduce(0, +) == 120)
                #expect(endpoints.allSatisfy { $0.active == 0 && $0.failures == 0 && $0.requests > 0 })
                #expect(await server.pendingRequests() == 0)
            }
        }
    }

    @Test("weighted round robin splits by weight (chi-square against the weights)")
    func weightedRoundRobinProportions() async throws {
        try await withBackends(replicas(3)) { addresses, _ in
            var configuration = oneCluster(addresses, .weightedRoundRobin)
            configuration.clusters[0].weights = [1, 3, 6]
            try await withProxy(configuration) { server, port in
                let client = try RawClient(port: port)
                for _ in 0..<300 {
                    client.send(get())
                    _ = client.readResponse()
                }
                let counts = try await server.endpoints().get().clusters[0].endpoints.map(\.requests)
                #expect(chiSquare(counts, expected: [0.1, 0.3, 0.6]) < chiSquareCritical001[1])
                #expect(chiSquare(counts, expected: [1.0 / 3, 1.0 / 3, 1.0 / 3]) > chiSquareCritical001[1])
            }
        }
    }

    /// Sends 540 requests from 9 concurrent clients to three backends, the third ten times slower, and
    /// returns how many each backend got.
    private func loadWithASlowBackend(_ kind: BalancerKind) async throws -> [Int] {
        try await withBackends(replicas(3, serviceTime: "constant:2ms", speeds: [1, 1, 0.1])) { addresses, _ in
            try await withProxy(oneCluster(addresses, kind)) { server, port in
                await concurrently(9) { _ in
                    guard let client = try? RawClient(port: port) else { return }
                    for _ in 0..<60 {
                        client.send(get())
                        _ = client.readResponse()
                    }
                }
                return try await server.endpoints().get().clusters[0].endpoints.map(\.requests)
            }
        }
    }

    @Test(
        "load-aware balancers send less to a slow backend; round robin does not (chi-square against even)",
        arguments: [BalancerKind.roundRobin, .leastRequest, .p2cPeakEwma]
    )
    func slowBackend(_ kind: BalancerKind) async throws {
        let counts = try await loadWithASlowBackend(kind)
        #expect(counts.reduce(0, +) == 540)
        let statistic = chiSquare(counts, expected: [1.0 / 3, 1.0 / 3, 1.0 / 3])
        if kind == .roundRobin {
            #expect(statistic < chiSquareCritical001[1], "\(counts)")
        } else {
            #expect(statistic > chiSquareCritical001[1], "\(kind.rawValue): \(counts)")
            #expect(counts[2] < min(counts[0], counts[1]), "\(kind.rawValue): \(counts)")
        }
    }
}
