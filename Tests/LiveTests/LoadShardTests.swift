import Foundation
import Histogram
import Live
import NIOCore
import NIOPosix
import Reports
import SharedModel
import Spec
import Testing

/// `meshsim load --shard I/N`: shares of one global plan, merged exactly from their HDR histograms.
@Suite("Distributed load: shards of one plan, histograms merged", .serialized, .timeLimit(.minutes(2)))
struct LoadShardTests {
    /// An open-loop configuration against `port`: Poisson at `rate` for `seconds`.
    static func configuration(port: Int, rate: Double, seconds: Int64 = 2) -> LoadConfiguration {
        var configuration = LoadConfiguration(
            host: "127.0.0.1",
            port: port,
            mode: .open(ArrivalSchedule(process: .poisson, rate: rate))
        )
        configuration.duration = seconds * 1_000_000_000
        configuration.drain = 1_000_000_000
        configuration.connections = 4
        configuration.seed = 11
        configuration.window = 500_000_000
        return configuration
    }

    @Test("a histogram record reads back bucket for bucket, and refuses what it cannot hold")
    func histogramRecord() throws {
        var histogram = Histogram<UInt64>(
            lowestDiscernibleValue: 1,
            highestTrackableValue: LatencyStats.highestTrackable,
            numberOfSignificantValueDigits: .three
        )
        var state: UInt64 = 42
        for _ in 0..<20_000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            _ = histogram.record((state >> 20) % 5_000_000_000)
        }
        let record = HistogramRecord(histogram)
        #expect(record.buckets.count < 20_000)
        let back = try record.histogram()
        #expect(back.totalCount == histogram.totalCount)
        for p in [0.0, 1, 50, 90, 99, 99.9, 99.99, 100] {
            #expect(back.valueAtPercentile(p) == histogram.valueAtPercentile(p), "p\(p)")
        }
        let encoded = try JSONEncoder().encode(record)
        #expect(try JSONDecoder().decode(HistogramRecord.self, from: encoded) == record)
        var bad = record
        bad.buckets.append([1, 2, 3])
        #expect(throws: HistogramRecord.Problem.self) { try bad.histogram() }
        bad = record
        bad.significantDigits = 9
        #expect(throws: HistogramRecord.Problem.self) { try bad.histogram() }
        // Hostile layouts and counts are refused, not trapped on or allocated for.
        bad = record
        bad.highestTrackableValue = UInt64.max
        #expect(throws: HistogramRecord.Problem.self) { try bad.histogram() }
        bad = record
        bad.buckets = [[1_000, UInt64.max], [2_000, 2]]
        #expect(throws: HistogramRecord.Problem.self) { try bad.histogram() }
    }

    @Test("N shards send exactly the arrivals of one generator, and their merge adds the histograms exactly")
    func sharesOfOnePlan() async throws {
        try await withServer(workers: 16, serviceTime: 1_000_000) { _, _, port in
            let whole = try await runLoad(Self.configuration(port: port, rate: 400))
            var shards: [LoadResult] = []
            let folder = NSTemporaryDirectory() + "meshsim-load-shards-\(getpid())"
            defer { try? FileManager.default.removeItem(atPath: folder) }
            var inputs: [LoadShardMerge.Shard] = []
            for index in 0..<3 {
                var configuration = Self.configuration(port: port, rate: 400)
                configuration.shardIndex = index
                configuration.shardCount = 3
                // Each shard writes its windows as `meshsim load --shard` does.
                let directory = folder + "/\(index)"
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                let log = try LoadWindowLog(path: directory + "/windows.jsonl")
                let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
                let result = try await LoadGenerator(configuration: configuration, group: group).run(
                    onWindow: { log.append($0) }
                )
                try await group.shutdownGracefully()
                let record = LoadShardRecord(result: result, arguments: [], version: "test", windows: try log.close())
                // Through JSON, as the merge reads it.
                let encoder = JSONEncoder()
                encoder.keyEncodingStrategy = .convertToSnakeCase
                try encoder.encode(record).write(to: URL(fileURLWithPath: directory + "/shard.json"))
                inputs.append((directory, try LoadShardMerge.read(directory), configuration))
                shards.append(result)
            }
            // The plan is the same sequence: the shards' arrivals add up to the single generator's, to the request.
            #expect(shards.map(\.total.arrivals).reduce(0, +) == whole.total.arrivals)
            #expect(shards.allSatisfy { $0.total.arrivals > 0 })
            #expect(shards.allSatisfy { abs($0.plannedRequests! * 3 - whole.plannedRequests!) < 1e-6 })

            let merged = try LoadShardMerge.merge(inputs.shuffled(), version: "test")
            #expect(merged.mergedShards == 3)
            #expect(merged.total.arrivals == whole.total.arrivals)
            var sum = shards[0].total.response.histogram
            for shard in shards.dropFirst() { sum.add(shard.total.response.histogram) }
            #expect(merged.total.response.histogram == sum)
            #expect(merged.total.response.requests == shards.map(\.total.response.requests).reduce(0, +))
            #expect(merged.summaryRow.p99Ms == Double(sum.valueAtPercentile(99)) / 1e6)
            #expect(merged.configuration.connections == 12)
            // Windows of the same index are merged: every window's arrivals add up.
            let windowArrivals = merged.windows.reduce(UInt64(0)) { $0 + $1.row.requests }
            #expect(windowArrivals >= merged.total.response.requests)
            #expect(merged.windows.map(\.index) == Array(0..<merged.windows.count))

            // Incomplete, doubled or mismatched shards are refused.
            func refusal(_ shards: [LoadShardMerge.Shard]) -> String {
                do {
                    _ = try LoadShardMerge.merge(shards, version: "test")
                    return ""
                } catch {
                    return "\(error)"
                }
            }
            #expect(refusal(Array(inputs.prefix(2))).contains("1 of 3 load shards missing (2)"))
            #expect(refusal(inputs + [inputs[0]]).contains("given twice"))
            var other = inputs
            other[1].configuration.seed = 12
            #expect(refusal(other).contains("--seed differs"))
            #expect(refusal(inputs).isEmpty)
            do {
                _ = try LoadShardMerge.merge(inputs, version: "other")
                Issue.record("shards of another version were merged")
            } catch {
                #expect("\(error)".contains("made by meshsim test"))
            }
        }
    }

    @Test("a closed loop cannot be sharded, and a shard must be below its count")
    func invalidShards() {
        var closed = LoadConfiguration(host: "127.0.0.1", port: 1, mode: .closed)
        closed.shardCount = 2
        #expect(throws: LiveError.self) { try closed.validate() }
        var open = Self.configuration(port: 1, rate: 10)
        open.shardIndex = 2
        open.shardCount = 2
        #expect(throws: LiveError.self) { try open.validate() }
    }

    @Test("load --shard as processes: serve, two shards, merge; bad shard flags are usage errors")
    func commandLine() async throws {
        let root = NSTemporaryDirectory() + "meshsim-load-shard-cli-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try await withServer(workers: 16, serviceTime: 1_000_000) { _, _, port in
            let start = String(Int(Date().timeIntervalSince1970) + 2)
            func shard(_ index: Int, rate: String = "300") throws -> Process {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: LiveCLI.binary)
                process.arguments = [
                    "load", "http://127.0.0.1:\(port)/", "--rate", rate, "--arrival", "poisson", "--duration", "2s",
                    "--drain", "1s", "--seed", "3", "--shard", "\(index)/2", "--start-at", start, "--quiet",
                    "--out", root + "/\(rate)/\(index)",
                ]
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
                return process
            }
            let running = try [shard(0), shard(1), shard(1, rate: "200")]
            for process in running {
                process.waitUntilExit()
                #expect(process.terminationStatus == 0, "\(process.arguments ?? [])")
            }
            let merged = try LiveCLI.run(["merge", root + "/300", "--out", root + "/merged"])
            #expect(merged.status == 0, "\(merged.stderr)")
            #expect(merged.stdout.contains("2 load shard(s) merged"), "\(merged.stdout)")
            let summary = try String(contentsOfFile: root + "/merged/summary.csv", encoding: .utf8)
            let rows = summary.split(separator: "\n")
            #expect(rows.count == 2 && rows[1].hasPrefix("load,direct,3,live,"), "\(summary)")
            let run = try String(contentsOfFile: root + "/merged/run.json", encoding: .utf8)
            #expect(run.contains("\"shards\": 2"), "\(run)")
            #expect(FileManager.default.fileExists(atPath: root + "/merged/latency.hgrm"))
            // The shards' own summaries add up to the merged request count.
            func requests(_ path: String) throws -> Int {
                let text = try String(contentsOfFile: path + "/summary.csv", encoding: .utf8)
                let lines = text.split(separator: "\n")
                let header = lines[0].split(separator: ",")
                let column = try #require(header.firstIndex(of: "requests"))
                return Int(lines[1].split(separator: ",", omittingEmptySubsequences: false)[column]) ?? -1
            }
            #expect(try requests(root + "/merged") == requests(root + "/300/0") + requests(root + "/300/1"))

            let mixed = try LiveCLI.run(["merge", root + "/300/0", root + "/200/1", "--out", root + "/mixed"])
            #expect(mixed.status == 65)
            #expect(mixed.stderr.contains("--rate, --schedule or --arrival differs"), "\(mixed.stderr)")
            let lonely = try LiveCLI.run(["merge", root + "/300/1", "--out", root + "/lonely"])
            #expect(lonely.status == 65)
            #expect(lonely.stderr.contains("1 of 2 load shards missing (0)"), "\(lonely.stderr)")
        }
        for (arguments, message) in [
            (["load", "http://127.0.0.1:9/", "--rate", "10", "--shard", "2/2"], "--shard 2/2: expected I/N"),
            (["load", "http://127.0.0.1:9/", "--shard", "0/2"], "needs an open loop"),
            (["load", "http://127.0.0.1:9/", "--rate", "10", "--start-at", "yesterday"], "--start-at yesterday"),
        ] {
            let outcome = try LiveCLI.run(arguments)
            #expect(outcome.status == 64, "\(arguments): \(outcome.stderr)")
            #expect(outcome.stderr.contains(message), "\(arguments): \(outcome.stderr)")
        }
    }
}
