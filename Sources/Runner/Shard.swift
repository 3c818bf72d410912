//===----------------------------------------------------------------------===//
// meshsim — Runner: shards of a run
//===----------------------------------------------------------------------===//

import Foundation
import MeshModel
import Reports
public import Scenario
import SimCore
import Spec

/// One of `count` parts of a run: the replications whose (variant, seed) unit number leaves `index` when divided by
/// `count`.
///
/// Units are dealt round-robin, so every shard gets a share of each variant and shards of a sweep take about the
/// same time. Written `I/N` on the command line, `I` from 0 to N−1 (as Kubernetes' `JOB_COMPLETION_INDEX`).
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    /// This shard's number, from 0 to `count` − 1.
    public var index: Int
    /// How many shards the run is split into.
    public var count: Int

    /// The most shards a run may be split into.
    public static let maxCount = 100_000

    /// Creates a shard; `index` must be below `count`.
    public init?(index: Int, count: Int) {
        guard (1...Self.maxCount).contains(count), (0..<count).contains(index) else { return nil }
        self.index = index
        self.count = count
    }

    /// Reads `I/N`.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) }),
            let index = Int(parts[0]), let count = Int(parts[1])
        else { return nil }
        self.init(index: index, count: count)
    }

    /// Whether the replication numbered `unit` (variant index × seeds + seed offset) is this shard's.
    public func owns(unit: Int) -> Bool { unit % count == index }

    public var description: String { "\(index)/\(count)" }
}

/// What a shard ran, written as `shard.json` beside its CSVs: enough for ``ShardMerge`` to check that the shards
/// belong together, put their rows back in order and rank the variants exactly as one process would.
struct ShardRecord: Codable {
    /// One replication the shard ran.
    struct Unit: Codable {
        var unit: Int
        var variant: String
        var seed: UInt64
        var events: UInt64
        var requests: UInt64
        var completed: UInt64
        var endNanoseconds: Int64
        /// The length in bytes of its row in the shard's `summary.csv`.
        var summaryBytes: Int
        /// The length in bytes of its rows in the shard's `timeseries.csv`.
        var timeseriesBytes: Int
        /// Its values of ``Experiment/comparisonMetrics``, written so they read back to the same bits.
        var metrics: [String: String]
    }

    static let currentFormat = "meshsim-shard/1"

    var format: String
    var meshsimVersion: String
    var scenario: String
    var scenarioFile: String
    var scenarioSha256: String
    /// A hash of what is split: the scenario's text, seeds, variants and durations.
    var runSha256: String
    var seed: UInt64
    var seeds: Int
    var variants: [String]
    var rankBy: String
    var shard: Int
    var shards: Int
    var jobs: Int
    var wallSeconds: Double
    var units: [Unit]

    /// A hash of everything that decides a run's CSVs: the scenario's text, the first seed, the seed count, the
    /// ranking metric and each variant's name, duration and warm-up (command-line overrides change these).
    static func runHash(_ scenario: Scenario) -> String {
        var text = scenario.source + "\u{0}\(scenario.seed)\u{0}\(scenario.seeds)\u{0}\(scenario.rankBy)"
        for variant in scenario.variants {
            text +=
                "\u{0}\(variant.name)\u{0}\(variant.spec.duration.nanoseconds)\u{0}\(variant.spec.warmup.nanoseconds)"
        }
        return SHA256.hex(Array(text.utf8))
    }
}

extension Experiment {
    /// Writes this shard's part of the run into `directory`: its rows of `summary.csv` and `timeseries.csv`,
    /// `sweep.csv` with a sweep, and `shard.json` last (a shard without it did not finish).
    public func writeShard(to directory: String) throws {
        guard let shard else { preconditionFailure("writeShard needs a run made with a shard") }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var summary = ReportCSV.summaryHeader + "\n"
        var timeseries = ReportCSV.timeseriesHeader + "\n"
        var units: [ShardRecord.Unit] = []
        for replication in replications {
            let result = replication.result
            let row = ReportCSV.summaryRow(
                RowKey(scenario: scenario.name, variant: replication.variant, seed: replication.seed, mode: .simulated),
                metrics: result.summary,
                events: UInt64(result.events),
                utilization: result.summary.utilization,
                policyCells: result.counters.cells(concurrencyLimit: result.concurrencyLimit)
            )
            summary += row
            timeseries += result.timeseries
            units.append(
                ShardRecord.Unit(
                    unit: replication.unit,
                    variant: replication.variant,
                    seed: replication.seed,
                    events: result.events,
                    requests: result.summary.requests,
                    completed: result.completed,
                    endNanoseconds: result.endTime.nanoseconds,
                    summaryBytes: row.utf8.count,
                    timeseriesBytes: result.timeseries.utf8.count,
                    metrics: Experiment.comparisonValues(result.summary).mapValues { "\($0)" }
                )
            )
        }
        let record = ShardRecord(
            format: ShardRecord.currentFormat,
            meshsimVersion: meshsimVersion,
            scenario: scenario.name,
            scenarioFile: scenario.file,
            scenarioSha256: SHA256.hex(Array(scenario.source.utf8)),
            runSha256: ShardRecord.runHash(scenario),
            seed: scenario.seed,
            seeds: scenario.seeds,
            variants: scenario.variants.map(\.name),
            rankBy: scenario.rankBy,
            shard: shard.index,
            shards: shard.count,
            jobs: jobs,
            wallSeconds: wallSeconds,
            units: units
        )
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try summary.write(toFile: directory + "/summary.csv", atomically: true, encoding: .utf8)
        try timeseries.write(toFile: directory + "/timeseries.csv", atomically: true, encoding: .utf8)
        if let sweepCSV { try sweepCSV.write(toFile: directory + "/sweep.csv", atomically: true, encoding: .utf8) }
        try encoder.encode(record).write(to: URL(fileURLWithPath: directory + "/shard.json"), options: .atomic)
    }
}
