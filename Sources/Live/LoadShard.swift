//===----------------------------------------------------------------------===//
// meshsim — Live: shards of a distributed load run
//===----------------------------------------------------------------------===//

import Foundation
import Histogram
public import Reports

extension LoadStats: Codable {
    private enum CodingKeys: String, CodingKey {
        case response, service, lag, arrivals, sent, errors, latencySum
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        response = try container.decode(LatencyStats.self, forKey: .response)
        do {
            service = try container.decode(HistogramRecord.self, forKey: .service).histogram()
            lag = try container.decode(HistogramRecord.self, forKey: .lag).histogram()
        } catch let problem as HistogramRecord.Problem {
            throw DecodingError.dataCorruptedError(
                forKey: .service,
                in: container,
                debugDescription: problem.description
            )
        }
        arrivals = try container.decode(UInt64.self, forKey: .arrivals)
        sent = try container.decode(UInt64.self, forKey: .sent)
        errors = try container.decode([UInt64].self, forKey: .errors)
        guard errors.count == LoadErrorKind.allCases.count else {
            throw DecodingError.dataCorruptedError(
                forKey: .errors,
                in: container,
                debugDescription: "expected \(LoadErrorKind.allCases.count) error counts"
            )
        }
        latencySum = try container.decode(Double.self, forKey: .latencySum)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(response, forKey: .response)
        try container.encode(HistogramRecord(service), forKey: .service)
        try container.encode(HistogramRecord(lag), forKey: .lag)
        try container.encode(arrivals, forKey: .arrivals)
        try container.encode(sent, forKey: .sent)
        try container.encode(errors, forKey: .errors)
        try container.encode(latencySum, forKey: .latencySum)
    }
}

/// What one shard of a distributed `meshsim load` measured, written as `shard.json` beside its reports; its
/// windows, with their histograms, are in `windows.jsonl`, one JSON object per line, written as they complete.
public struct LoadShardRecord: Codable, Sendable {
    /// The format's name and version.
    public static let currentFormat = "meshsim-load-shard/1"

    public var format = LoadShardRecord.currentFormat
    public var meshsimVersion: String
    /// The `load` command's arguments (after `load`), from which the merge rebuilds and compares the schedule.
    public var arguments: [String]
    public var shard: Int
    public var shards: Int
    public var scenario: String
    public var variant: String
    public var seed: UInt64
    /// The measured span's statistics, with full-resolution histograms.
    public var total: LoadStats
    public var connections: ConnectionCounts
    public var unfinished: Int
    public var elapsed: Double
    public var flags: [String]
    /// How many lines `windows.jsonl` holds.
    public var windows: Int

    /// The record of `result`, shard `shard` of `shards`, run with `arguments`.
    public init(result: LoadResult, arguments: [String], version: String, windows: Int) {
        let configuration = result.configuration
        meshsimVersion = version
        self.arguments = arguments
        shard = configuration.shardIndex
        shards = configuration.shardCount
        scenario = configuration.scenario
        variant = configuration.variant
        seed = configuration.seed
        total = result.total
        connections = result.connections
        unfinished = result.unfinished
        elapsed = result.elapsed
        flags = result.flags
        self.windows = windows
    }
}

/// Appends a load shard's windows to `windows.jsonl` as they complete, so that a long run keeps no histogram of a
/// finished window in memory.
public final class LoadWindowLog: @unchecked Sendable {
    private let handle: FileHandle
    private let encoder = JSONEncoder()
    private let lock = NSLock()
    private var written = 0
    private var failure: (any Error)?

    /// Creates (or empties) `path`.
    public init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw LiveError.invalid("cannot create \(path)")
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        encoder.outputFormatting = [.sortedKeys]
    }

    /// Appends one window.
    public func append(_ window: LoadWindow) {
        lock.lock()
        defer { lock.unlock() }
        guard failure == nil else { return }
        do {
            var line = try encoder.encode(window)
            line.append(0x0A)
            try handle.write(contentsOf: line)
            written += 1
        } catch {
            failure = error
        }
    }

    /// Closes the file; returns the windows written.
    ///
    /// - Throws: the first error met while writing.
    public func close() throws -> Int {
        lock.lock()
        defer { lock.unlock() }
        try? handle.close()
        if let failure { throw failure }
        return written
    }
}

/// The shards of a distributed load run added together: histograms bucket by bucket, counters summed, windows of
/// the same index merged, so the result is what one generator sending every shard's requests would have measured.
public enum LoadShardMerge {
    /// One shard to merge: its folder, its record and the configuration rebuilt from its arguments.
    public typealias Shard = (folder: String, record: LoadShardRecord, configuration: LoadConfiguration)

    /// Reads a load shard's `shard.json`.
    ///
    /// - Throws: `LiveError.invalid` naming the file and what is wrong.
    public static func read(_ folder: String) throws -> LoadShardRecord {
        let path = folder + "/shard.json"
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let record: LoadShardRecord
        do {
            record = try decoder.decode(LoadShardRecord.self, from: try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw LiveError.invalid("\(path): not a meshsim load shard record: \(error)")
        }
        guard record.format == LoadShardRecord.currentFormat else {
            throw LiveError.invalid("\(path): format '\(record.format)', expected '\(LoadShardRecord.currentFormat)'")
        }
        guard (1...100_000).contains(record.shards), (0..<record.shards).contains(record.shard) else {
            throw LiveError.invalid("\(path): shard \(record.shard)/\(record.shards) is not a possible split")
        }
        return record
    }

    /// The flag whose value differs between two shards' schedules, or nil when they send the same plan.
    static func scheduleDifference(_ a: LoadConfiguration, _ b: LoadConfiguration) -> String? {
        if a.host != b.host || a.port != b.port || a.path != b.path { return "the URL" }
        if a.mode != b.mode { return "--rate, --schedule or --arrival" }
        if a.seed != b.seed { return "--seed" }
        if a.duration != b.duration { return "--duration" }
        if a.warmup != b.warmup { return "--warmup" }
        if a.window != b.window { return "--window" }
        if a.timeout != b.timeout { return "--timeout" }
        if a.drain != b.drain { return "--drain" }
        return nil
    }

    /// Merges `shards`: all N of one split of one schedule, each exactly once.
    ///
    /// - Throws: `LiveError.invalid` naming the folder at fault.
    public static func merge(_ shards: [Shard], version: String) throws -> LoadResult {
        guard let first = shards.first else { throw LiveError.invalid("no shard folders given") }
        let count = first.record.shards
        var byIndex: [Int: String] = [:]
        for shard in shards {
            if shard.record.meshsimVersion != version {
                throw LiveError.invalid(
                    "\(shard.folder): made by meshsim \(shard.record.meshsimVersion), this is \(version): merge "
                        + "shards with the version that made them"
                )
            }
            if shard.record.shards != count {
                throw LiveError.invalid(
                    "\(shard.folder): shard \(shard.record.shard)/\(shard.record.shards), but \(first.folder) is "
                        + "\(first.record.shard)/\(count): all shards must split the schedule the same way"
                )
            }
            if let flag = scheduleDifference(first.configuration, shard.configuration) {
                throw LiveError.invalid(
                    "\(shard.folder): sent another schedule than \(first.folder) (\(flag) differs): shards of one "
                        + "run must share the URL, rate or schedule, arrival, seed, duration, warm-up, window, "
                        + "timeout and drain"
                )
            }
            if let other = byIndex[shard.record.shard] {
                throw LiveError.invalid(
                    "shard \(shard.record.shard)/\(count) is given twice: \(other) and \(shard.folder)"
                )
            }
            byIndex[shard.record.shard] = shard.folder
        }
        let missing = (0..<count).filter { byIndex[$0] == nil }
        if !missing.isEmpty {
            let list = missing.prefix(20).map(String.init).joined(separator: ", ")
            throw LiveError.invalid(
                "\(missing.count) of \(count) load shards missing (\(list)\(missing.count > 20 ? ", …" : "")): a "
                    + "shard folder holds shard.json only once its run has finished"
            )
        }

        var configuration = first.configuration
        configuration.shardIndex = 0
        configuration.shardCount = 1
        configuration.connections = 0
        configuration.maxConnections = 0
        configuration.threads = 0
        configuration.maxInFlight = 0
        var total = LoadStats(resolution: .fine)
        var connections = ConnectionCounts()
        var unfinished = 0
        var elapsed = 0.0
        var flags: [String] = []
        var windows: [Int: LoadWindow] = [:]
        let decoder = JSONDecoder()
        for shard in shards.sorted(by: { $0.record.shard < $1.record.shard }) {
            configuration.connections += shard.configuration.connections
            configuration.maxConnections += shard.configuration.maxConnections
            configuration.threads += shard.configuration.threads
            configuration.maxInFlight += shard.configuration.maxInFlight
            total.add(shard.record.total)
            connections.add(shard.record.connections)
            unfinished += shard.record.unfinished
            elapsed = max(elapsed, shard.record.elapsed)
            flags += shard.record.flags.map { "shard \(shard.record.shard): \($0)" }
            let path = shard.folder + "/windows.jsonl"
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw LiveError.invalid("\(path): cannot read it: \(error.localizedDescription)")
            }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
            guard lines.count == shard.record.windows else {
                throw LiveError.invalid(
                    "\(path): \(lines.count) windows, but shard.json says \(shard.record.windows) (a file cut short?)"
                )
            }
            for (number, line) in lines.enumerated() {
                let window: LoadWindow
                do { window = try decoder.decode(LoadWindow.self, from: Data(line.utf8)) } catch {
                    throw LiveError.invalid("\(path): line \(number + 1) is not a window: \(error)")
                }
                if var merged = windows[window.index] {
                    merged.stats.add(window.stats)
                    merged.inFlight += window.inFlight
                    merged.waiting += window.waiting
                    merged.connections += window.connections
                    windows[window.index] = merged
                } else {
                    windows[window.index] = window
                }
            }
        }
        let seconds = Double(configuration.window) / 1e9
        var result = LoadResult(
            configuration: configuration,
            total: total,
            windows: windows.keys.sorted().map { LoadWindowRow(windows[$0]!, seconds: seconds) },
            connections: connections,
            unfinished: unfinished,
            elapsed: elapsed,
            flags: []
        )
        result.mergedShards = count
        result.flags = flags + LoadGenerator.selfCheck(result)
        return result
    }
}
