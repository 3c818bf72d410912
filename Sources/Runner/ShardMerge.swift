//===----------------------------------------------------------------------===//
// meshsim — Runner: merging shards
//===----------------------------------------------------------------------===//

import Foundation
import Reports
import Scenario

/// Why shards cannot be merged, with the folder or file at fault.
public struct MergeError: Error, CustomStringConvertible {
    public var description: String
}

/// The shards of one run put back together: the same `summary.csv`, `timeseries.csv`, `comparison.csv` and
/// `sweep.csv`, byte for byte, as the run in one process makes, and a `run.json` that adds up the shards' work.
public struct ShardMerge {
    /// The scenario's name.
    public let scenario: String
    /// How many shards were merged.
    public let shards: Int
    /// How many replications (variant × seed) they ran.
    public let replications: Int
    /// The variants ranked, best first.
    public let comparison: [Experiment.VariantComparison]
    public let summaryCSV: String
    public let timeseriesCSV: String
    public let comparisonCSV: String
    public let sweepCSV: String?
    public let runJSON: String

    /// The shard folders among `paths`: each path is a shard's folder (it holds `shard.json`) or a folder whose
    /// sub-folders are, as the shared volume of an Indexed Job holds them.
    public static func shardFolders(_ paths: [String]) throws(MergeError) -> [String] {
        var folders: [String] = []
        let files = FileManager.default
        for path in paths {
            var isFolder: ObjCBool = false
            guard files.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else {
                throw MergeError(description: "\(path): no such folder")
            }
            if files.fileExists(atPath: path + "/shard.json") {
                folders.append(path)
                continue
            }
            let children = ((try? files.contentsOfDirectory(atPath: path)) ?? []).sorted()
            let found = children.map { path + "/" + $0 }.filter { files.fileExists(atPath: $0 + "/shard.json") }
            guard !found.isEmpty else {
                throw MergeError(
                    description: "\(path): no shard.json in it or in its sub-folders (write shards with "
                        + "`meshsim run SCENARIO --shard I/N --out DIR`)"
                )
            }
            folders += found
        }
        return folders
    }

    /// Reads and checks the shards in `folders` and merges them.
    ///
    /// - Throws: ``MergeError`` when a record cannot be read, the shards come from different scenarios, seeds,
    ///   settings or meshsim versions, a shard is missing or given twice, or a CSV does not match its record.
    public static func merge(_ folders: [String]) throws(MergeError) -> ShardMerge {
        guard !folders.isEmpty else { throw MergeError(description: "no shard folders given") }
        var shards: [(folder: String, record: ShardRecord)] = []
        for folder in folders { shards.append((folder, try read(folder))) }
        let first = shards[0]
        for (folder, record) in shards.dropFirst() {
            let expected = first.record
            if record.meshsimVersion != expected.meshsimVersion {
                throw MergeError(
                    description: "\(folder): made by meshsim \(record.meshsimVersion), but \(first.folder) by "
                        + "\(expected.meshsimVersion): shards must come from one version"
                )
            }
            if record.scenarioSha256 != expected.scenarioSha256 || record.scenario != expected.scenario {
                throw MergeError(
                    description:
                        "\(folder): ran scenario '\(record.scenario)' (sha256 \(record.scenarioSha256.prefix(12))…), "
                        + "but \(first.folder) ran '\(expected.scenario)' (sha256 \(expected.scenarioSha256.prefix(12))…)"
                )
            }
            if record.runSha256 != expected.runSha256 {
                throw MergeError(
                    description: "\(folder): ran the scenario with other settings than \(first.folder) (seed "
                        + "\(record.seed) vs \(expected.seed), seeds \(record.seeds) vs \(expected.seeds), "
                        + "\(record.variants.count) vs \(expected.variants.count) variants, or another --duration)"
                )
            }
            if record.shards != expected.shards {
                throw MergeError(
                    description: "\(folder): shard \(record.shard)/\(record.shards), but \(first.folder) is shard "
                        + "\(expected.shard)/\(expected.shards): all shards must split the run the same way"
                )
            }
        }
        let count = first.record.shards
        var byIndex: [Int: String] = [:]
        for (folder, record) in shards {
            if let other = byIndex[record.shard] {
                throw MergeError(description: "shard \(record.shard)/\(count) is given twice: \(other) and \(folder)")
            }
            byIndex[record.shard] = folder
        }
        let missing = (0..<count).filter { byIndex[$0] == nil }
        if !missing.isEmpty {
            let list = missing.prefix(20).map(String.init).joined(separator: ", ")
            throw MergeError(
                description: "\(missing.count) of \(count) shards missing (\(list)\(missing.count > 20 ? ", …" : "")): "
                    + "a shard folder holds shard.json only once its run has finished"
            )
        }

        // Every unit once, from the shard that owns it, then in unit order.
        let record = first.record
        let total = record.variants.count * record.seeds
        var units: [(unit: ShardRecord.Unit, summary: Substring, timeseries: Substring)?] = Array(
            repeating: nil,
            count: total
        )
        for (folder, shard) in shards {
            let summary = try csvBody(folder + "/summary.csv", header: ReportCSV.summaryHeader)
            let timeseries = try csvBody(folder + "/timeseries.csv", header: ReportCSV.timeseriesHeader)
            var summaryAt = summary.utf8.startIndex
            var timeseriesAt = timeseries.utf8.startIndex
            for unit in shard.units {
                guard (0..<total).contains(unit.unit), unit.unit % count == shard.shard, unit.summaryBytes >= 0,
                    unit.timeseriesBytes >= 0
                else {
                    throw MergeError(
                        description: "\(folder)/shard.json: unit \(unit.unit) does not belong to shard "
                            + "\(shard.shard)/\(count) of \(total) replications"
                    )
                }
                let variantIndex = unit.unit / record.seeds
                let seed = record.seed &+ UInt64(unit.unit % record.seeds)
                guard unit.variant == record.variants[variantIndex], unit.seed == seed, units[unit.unit] == nil else {
                    throw MergeError(
                        description: "\(folder)/shard.json: unit \(unit.unit) should be variant "
                            + "'\(record.variants[variantIndex])' seed \(seed), once"
                    )
                }
                guard
                    let summaryEnd = summary.utf8.index(
                        summaryAt,
                        offsetBy: unit.summaryBytes,
                        limitedBy: summary.utf8.endIndex
                    ),
                    let timeseriesEnd = timeseries.utf8.index(
                        timeseriesAt,
                        offsetBy: unit.timeseriesBytes,
                        limitedBy: timeseries.utf8.endIndex
                    )
                else {
                    throw MergeError(
                        description: "\(folder): summary.csv or timeseries.csv is shorter than shard.json says"
                    )
                }
                let row = summary[summaryAt..<summaryEnd]
                let prefix =
                    [record.scenario, unit.variant, String(unit.seed)].map(CSVFormat.field).joined(separator: ",") + ","
                guard row.hasPrefix(prefix), row.hasSuffix("\n") else {
                    throw MergeError(
                        description: "\(folder)/summary.csv: the row of variant '\(unit.variant)' seed \(unit.seed) "
                            + "is not where shard.json puts it"
                    )
                }
                units[unit.unit] = (unit, row, timeseries[timeseriesAt..<timeseriesEnd])
                summaryAt = summaryEnd
                timeseriesAt = timeseriesEnd
            }
            guard summaryAt == summary.utf8.endIndex, timeseriesAt == timeseries.utf8.endIndex else {
                throw MergeError(description: "\(folder): summary.csv or timeseries.csv is longer than shard.json says")
            }
        }
        if let gap = units.firstIndex(where: { $0 == nil }) {
            throw MergeError(
                description: "replication \(gap) (variant '\(record.variants[gap / record.seeds])' seed "
                    + "\(record.seed &+ UInt64(gap % record.seeds))) is in no shard: shard \(gap % count) "
                    + "(\(byIndex[gap % count] ?? "?")) did not run it"
            )
        }
        let ordered = units.map { $0! }

        var samples: [(variant: String, metrics: [String: Double])] = []
        for (unit, _, _) in ordered {
            var metrics: [String: Double] = [:]
            for (name, text) in unit.metrics {
                guard Experiment.comparisonMetrics.contains(name), let value = Double(text) else {
                    throw MergeError(
                        description: "\(byIndex[unit.unit % count]!)/shard.json: unit \(unit.unit) has an unreadable "
                            + "metric \(name): \(text)"
                    )
                }
                metrics[name] = value
            }
            samples.append((unit.variant, metrics))
        }
        let comparison = Experiment.compare(variants: record.variants, rankBy: record.rankBy, samples: samples)
        let sweeps = try shards.map { shard throws(MergeError) -> String? in
            let path = shard.folder + "/sweep.csv"
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw MergeError(description: "\(path): cannot read it: \(error.localizedDescription)")
            }
        }
        if let different = sweeps.firstIndex(where: { $0 != sweeps[0] }) {
            throw MergeError(description: "\(shards[different].folder)/sweep.csv differs from \(shards[0].folder)'s")
        }
        let seeds = (0..<record.seeds).map { record.seed &+ UInt64($0) }
        let run = RunRecord(
            scenario: record.scenario,
            scenarioFile: record.scenarioFile,
            scenarioSHA256: record.scenarioSha256,
            seeds: seeds,
            variants: record.variants,
            rankBy: record.rankBy,
            shards: count,
            jobs: shards.reduce(0) { $0 + $1.record.jobs },
            wallSeconds: shards.reduce(0.0) { $0 + $1.record.wallSeconds },
            events: ordered.reduce(0) { $0 + $1.unit.events },
            requests: ordered.reduce(0) { $0 + $1.unit.requests },
            completed: ordered.reduce(0) { $0 + $1.unit.completed },
            simulatedSeconds: ordered.reduce(0.0) { $0 + Double($1.unit.endNanoseconds) / 1e9 }
        )
        return ShardMerge(
            scenario: record.scenario,
            shards: count,
            replications: total,
            comparison: comparison,
            summaryCSV: ReportCSV.summaryHeader + "\n" + ordered.map { String($0.summary) }.joined(),
            timeseriesCSV: ReportCSV.timeseriesHeader + "\n" + ordered.map { String($0.timeseries) }.joined(),
            comparisonCSV: Experiment.comparisonCSV(scenario: record.scenario, comparison),
            sweepCSV: sweeps[0],
            runJSON: run.json
        )
    }

    /// Reads a shard's `shard.json`.
    static func read(_ folder: String) throws(MergeError) -> ShardRecord {
        let path = folder + "/shard.json"
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw MergeError(description: "\(path): cannot read it: \(error.localizedDescription)")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let record: ShardRecord
        do { record = try decoder.decode(ShardRecord.self, from: data) } catch {
            throw MergeError(description: "\(path): not a meshsim shard record: \(describe(error))")
        }
        guard record.format == ShardRecord.currentFormat else {
            throw MergeError(
                description: "\(path): format '\(record.format)', expected '\(ShardRecord.currentFormat)'"
            )
        }
        guard (1...Shard.maxCount).contains(record.shards), (0..<record.shards).contains(record.shard),
            record.seeds >= 1,
            !record.variants.isEmpty, record.variants.count <= 1_000_000 / record.seeds
        else {
            throw MergeError(
                description: "\(path): shard \(record.shard)/\(record.shards) of \(record.variants.count) "
                    + "variant(s) × \(record.seeds) seed(s) is not a possible split"
            )
        }
        return record
    }

    /// What went wrong decoding a record, in words.
    static func describe(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, let context)?:
            return "the key '\((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))' is missing"
        case .typeMismatch(_, let context)?, .valueNotFound(_, let context)?:
            return "'\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type"
        case .dataCorrupted(let context)?:
            return context.debugDescription
        default:
            return "\(error)"
        }
    }

    /// A shard CSV's rows after its header, which must be `header`.
    static func csvBody(_ path: String, header: String) throws(MergeError) -> Substring {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw MergeError(description: "\(path): cannot read it: \(error.localizedDescription)")
        }
        guard text.hasPrefix(header + "\n") else {
            throw MergeError(
                description: "\(path): line 1 is not the header this meshsim writes (the shards are from another "
                    + "version, or the file was changed)"
            )
        }
        return text.dropFirst(header.count + 1)
    }

    /// Writes the merged reports into `directory`, creating it.
    public func write(to directory: String) throws {
        try Experiment.writeReports(
            summary: summaryCSV,
            timeseries: timeseriesCSV,
            comparison: comparisonCSV,
            run: runJSON,
            sweep: sweepCSV,
            to: directory
        )
    }
}
