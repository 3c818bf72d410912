//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

import Foundation
import Histogram
public import NIOCore
import NIOPosix
public import Reports
import SharedModel

/// The result of one `meshsim load` run.
public struct LoadResult: Sendable {
    /// The configuration that ran.
    public var configuration: LoadConfiguration
    /// Everything counted in the measured span (requests intended in [warmup, duration)).
    public var total: LoadStats
    /// The time series, one merged window per entry, in order.
    public var windows: [LoadWindowRow]
    /// Connection counts over the run, all loops.
    public var connections: ConnectionCounts
    /// Counted requests still outstanding when the run ended.
    public var unfinished: Int
    /// Wall time from the start of the schedule to the end of the drain (s).
    public var elapsed: Double
    /// Reasons the run should not be trusted (the generator fell behind, fewer connections than asked).
    public var flags: [String]
    /// For a merge of a distributed run's shards: how many there were.
    public var mergedShards: Int?

    /// The measured span in seconds.
    public var measuredSeconds: Double { Double(configuration.duration - configuration.warmup) / 1e9 }

    /// The planned number of arrivals in the measured span (open loop), from the rate schedule: for one shard of a
    /// distributed run, its share.
    public var plannedRequests: Double? {
        guard case .open(let schedule) = configuration.mode else { return nil }
        let all = schedule.expectedArrivals(from: configuration.warmup, to: configuration.duration)
        return all / Double(configuration.shardCount)
    }

    /// The summary row in the simulator's schema.
    public var summaryRow: MetricRow {
        var row = MetricRow(
            stats: total.response,
            arrivals: total.arrivals,
            unfinished: UInt64(unfinished),
            seconds: measuredSeconds
        )
        row.meanInFlight = total.latencySum / 1e9 / measuredSeconds
        return row
    }

    /// Achieved send rate over the measured span (requests written per second).
    public var achievedRate: Double { Double(total.sent) / measuredSeconds }
}

/// The open-loop (or closed-loop) HTTP/1.1 load generator on SwiftNIO.
///
/// Open loop: requests go out at planned *intended* times whatever the answers do, and latency is measured from the
/// intended time, so a stall of the target shows up in full (no coordinated omission). The service time (from the
/// actual write) and the send lag (intended → actual write) are kept beside it. A request that finds no idle
/// connection waits for one (the pool grows up to `maxConnections`); beyond `maxInFlight` it is dropped and counted.
/// Histograms are HDR (1 µs resolution to 1 h, 3 significant digits), one set per event loop, merged per window.
public final class LoadGenerator: Sendable {
    /// The configuration.
    public let configuration: LoadConfiguration
    private let group: any EventLoopGroup

    /// Prepares a run on `group` (which should have `configuration.threads` loops).
    public init(configuration: LoadConfiguration, group: any EventLoopGroup) {
        self.configuration = configuration
        self.group = group
    }

    /// Runs the schedule and the drain; calls `onWindow` with each merged window as it completes.
    ///
    /// `onStart` is called with the schedule's time zero (a monotonic deadline) before the first request is due, so
    /// that a fault timeline can share it.
    public func run(
        onStart: @Sendable (NIODeadline) -> Void = { _ in },
        onWindow: @Sendable (LoadWindow) -> Void = { _ in }
    ) async throws -> LoadResult {
        try configuration.validate()
        let address: SocketAddress
        do {
            address = try SocketAddress.makeAddressResolvingHost(configuration.host, port: configuration.port)
        } catch {
            throw LiveError.invalid("cannot resolve \(configuration.host): \(error)")
        }
        var head = "GET \(configuration.path) HTTP/1.1\r\nHost: \(configuration.hostHeader)\r\n"
        head += "User-Agent: meshsim\r\nAccept: */*\r\n\r\n"
        let request = ByteBuffer(string: head)
        var workers: [LoadWorker] = []
        for i in 0..<configuration.threads {
            workers.append(
                LoadWorker(
                    index: i,
                    loopCount: configuration.threads,
                    loop: group.next(),
                    configuration: configuration,
                    address: address,
                    request: request
                )
            )
        }
        // Connect first; start the clock only when every loop is ready (one monotonic base for all).
        for worker in workers { try await worker.loop.flatSubmit { worker.prepare() }.get() }
        var start = NIODeadline.now().uptimeNanoseconds + 2_000_000
        var late: Double?
        if let at = configuration.startAt {
            let wait = at - Date().timeIntervalSince1970
            if wait > 0 { start += UInt64(wait * 1e9) } else { late = -wait }
        }
        onStart(.uptimeNanoseconds(start))
        for worker in workers {
            worker.loop.scheduleTask(deadline: .uptimeNanoseconds(start)) { worker.begin(at: start) }
        }

        var merger = WindowMerger(loops: workers.count)
        var windows: [LoadWindowRow] = []
        let seconds = Double(configuration.window) / 1e9
        var finished = false
        while !finished {
            try await Task.sleep(nanoseconds: 200_000_000)
            finished = true
            for worker in workers {
                let (taken, done) = try await worker.loop.submit {
                    (worker.takeWindows(), worker.isDone)
                }.get()
                merger.add(taken, from: worker.index)
                if done { merger.markDone(worker.index) } else { finished = false }
            }
            for window in merger.takeComplete() {
                onWindow(window)
                windows.append(LoadWindowRow(window, seconds: seconds))
            }
        }
        let end = NIODeadline.now().uptimeNanoseconds
        for window in merger.takeAll() {
            onWindow(window)
            windows.append(LoadWindowRow(window, seconds: seconds))
        }
        var total = LoadStats(resolution: .fine)
        var counts = ConnectionCounts()
        var unfinished = 0
        for worker in workers {
            let (stats, c, u) = try await worker.loop.submit { (worker.total, worker.counts, worker.unfinished) }.get()
            total.add(stats)
            counts.add(c)
            unfinished += u
        }
        var result = LoadResult(
            configuration: configuration,
            total: total,
            windows: windows,
            connections: counts,
            unfinished: unfinished,
            elapsed: Double(end - start) / 1e9,
            flags: []
        )
        result.flags = Self.selfCheck(result)
        if let late, late > 0.001 {
            result.flags.append(
                "started \(formatMs(late)) s after --start-at: this generator's schedule is shifted by as much"
            )
        }
        return result
    }

    /// The self-check: was the generator itself the bottleneck, or short of connections?
    static func selfCheck(_ result: LoadResult) -> [String] {
        var flags: [String] = []
        let configuration = result.configuration
        if case .open = configuration.mode, result.total.lag.totalCount > 0 {
            let p99 = result.total.lag.valueAtPercentile(99)
            if p99 > UInt64(configuration.lagThreshold) {
                flags.append(
                    "send lag p99 \(formatMs(Double(p99) / 1e6)) ms exceeds \(formatMs(Double(configuration.lagThreshold) / 1e6)) ms: the generator fell behind its schedule"
                )
            }
        }
        if let planned = result.plannedRequests, planned >= 1 {
            // Attempted vs planned (loadgen-and-proxies.md §6.6): requests that could not be sent at all. One
            // request either way is the plan's rounding at the span's edges, not a shortfall.
            let shortfall = (planned - Double(result.total.sent)) / planned
            if shortfall > max(0.01, 1.5 / planned) {
                flags.append(
                    "sent \(result.total.sent) of \(Int(planned.rounded())) planned requests (\(CSVFormat.fixed(shortfall * 100, digits: 1))% short)"
                )
            }
        }
        if result.connections.peak < configuration.connections {
            flags.append(
                "opened at most \(result.connections.peak) of the \(configuration.connections) connections asked for"
            )
        }
        if result.total.count(.dropped) > 0 {
            flags.append("\(result.total.count(.dropped)) requests dropped at the in-flight cap (--max-inflight)")
        }
        return flags
    }
}

/// Formats milliseconds with 3 decimals.
func formatMs(_ value: Double) -> String { CSVFormat.fixed(value, digits: 3) }

/// Merges the per-loop windows of the same index.
///
/// A window is complete when every loop has reported it, or has finished before it (a loop that drained earlier
/// reports no later windows).
struct WindowMerger {
    let loops: Int
    private var pending: [Int: (window: LoadWindow, reporters: Set<Int>)] = [:]
    private var lastReported: [Int: Int] = [:]
    private var finalIndex: [Int: Int] = [:]

    init(loops: Int) { self.loops = loops }

    mutating func add(_ windows: [LoadWindow], from loop: Int) {
        for window in windows {
            lastReported[loop] = max(lastReported[loop] ?? -1, window.index)
            if var entry = pending[window.index] {
                entry.window.stats.add(window.stats)
                entry.window.inFlight += window.inFlight
                entry.window.waiting += window.waiting
                entry.window.connections += window.connections
                entry.reporters.insert(loop)
                pending[window.index] = entry
            } else {
                pending[window.index] = (window, [loop])
            }
        }
    }

    /// Records that `loop` has finished: it reports no window after its last one.
    mutating func markDone(_ loop: Int) {
        finalIndex[loop] = lastReported[loop] ?? -1
    }

    private func isComplete(_ index: Int, _ reporters: Set<Int>) -> Bool {
        (0..<loops).allSatisfy { reporters.contains($0) || (finalIndex[$0].map { index > $0 } ?? false) }
    }

    /// The windows that are complete, in order (stopping at the first that is not).
    mutating func takeComplete() -> [LoadWindow] {
        var out: [LoadWindow] = []
        for index in pending.keys.sorted() {
            guard let entry = pending[index], isComplete(index, entry.reporters) else { break }
            out.append(entry.window)
            pending[index] = nil
        }
        return out
    }

    /// Every window left, in order (at the end of the run).
    mutating func takeAll() -> [LoadWindow] {
        defer { pending.removeAll() }
        return pending.keys.sorted().map { pending[$0]!.window }
    }
}
