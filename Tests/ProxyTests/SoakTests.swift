import Foundation
import Live
import NIOCore
import NIOPosix
import Proxy
import Reports
import SharedModel
import Spec
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Open descriptors of this process.
func openDescriptors() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}

/// Resident memory of this process in bytes.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return -1 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return -1 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

@Suite("Proxy soak", .serialized, .timeLimit(.minutes(4)))
struct SoakTests {
    /// Closed-loop load through the proxy for `seconds`.
    func load(port: Int, seconds: Double) async throws -> LoadResult {
        var configuration = LoadConfiguration(host: "127.0.0.1", port: port, mode: .closed)
        configuration.connections = 64
        configuration.maxConnections = 64
        configuration.duration = Int64(seconds * 1e9)
        configuration.drain = 5_000_000_000
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let result = try await LoadGenerator(configuration: configuration, group: group).run()
        try await group.shutdownGracefully()
        return result
    }

    @Test("1,000,000 requests through the proxy: its descriptors and resident memory come back to their level")
    func millionRequests() async throws {
        try await withBackends(replicas(2)) { backends, _ in
            var configuration = oneCluster(backends, .leastRequest)
            configuration.threads = 1
            try await withProxy(configuration) { server, port in
                // Warm up (pools, histograms, allocator), and measure the rate to size the run.
                let warm = try await load(port: port, seconds: 2)
                try await Task.sleep(for: .milliseconds(300))
                // Each pooled upstream connection holds two descriptors of this process (the proxy's end and the
                // backend's); the pools may grow up to their cap, so they are counted apart.
                let descriptors = openDescriptors() - 2 * (await server.idleUpstreamConnections())
                let resident = residentBytes()
                let rate = max(Double(warm.total.response.count(.ok)) / 2, 5_000)
                let seconds = min(1_050_000 / rate, 200)
                var total: UInt64 = 0
                var runs = 0
                while total < 1_000_000 && runs < 3 {
                    let result = try await load(port: port, seconds: runs == 0 ? seconds : seconds / 4)
                    #expect(result.total.response.count(.ok) == result.total.response.requests)
                    total += result.total.response.count(.ok)
                    runs += 1
                }
                #expect(total >= 1_000_000, "\(total) requests")
                try await Task.sleep(for: .milliseconds(300))
                #expect(await server.pendingRequests() == 0)
                let pooled = await server.idleUpstreamConnections()
                #expect(pooled <= 2 * configuration.maxIdlePerBackend)
                let descriptorsAfter = openDescriptors() - 2 * pooled
                let residentAfter = residentBytes()
                #expect(abs(descriptorsAfter - descriptors) <= 4, "descriptors \(descriptors) → \(descriptorsAfter)")
                #expect(
                    residentAfter - resident < 48 << 20,
                    "resident \(resident >> 20) MiB → \(residentAfter >> 20) MiB after \(total) requests"
                )
            }
        }
    }
}
