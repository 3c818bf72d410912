//===----------------------------------------------------------------------===//
// meshsim — command line: merging shards
//===----------------------------------------------------------------------===//

import ArgumentParser
import Foundation
import Live
import Runner

extension MeshSim {
    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Merge the shards of a run (`run --shard I/N`) into one set of reports.",
            discussion: """
                Each DIR is a shard's folder (it holds shard.json) or a folder of shard folders, as the shared
                volume of a Kubernetes Indexed Job holds them. All N shards must be there, from one meshsim version.

                Simulation shards (`run --shard I/N`) must come from one scenario, seeds and settings; the merge
                writes summary.csv, timeseries.csv, comparison.csv (and sweep.csv) byte-identical to the run in one
                process, and run.json adding up the shards' work.

                Load shards (`load --shard I/N`) must share one schedule (URL, rate or schedule, arrival, seed,
                duration, warm-up, window, timeout, drain); the merge adds their HDR histograms bucket by bucket,
                for the whole run and per window, and writes summary.csv, timeseries.csv, run.json and the .hgrm
                files as one `load` does. See docs/scale-out.md.

                Exit codes: 0 merged, 64 usage error, 65 shards that cannot be read or do not belong together.
                """
        )

        @Argument(help: "Shard folders, or folders of shard folders.")
        var directories: [String] = []

        @Option(help: "Output folder for the merged reports.")
        var out: String

        @Flag(help: "No table.")
        var quiet = false

        func validate() throws {
            if directories.isEmpty { throw ValidationError("give at least one shard folder") }
        }

        /// The `format` of a shard record, whatever kind it is.
        struct Format: Decodable {
            var format: String
        }

        func run() throws {
            try prepareOutputFolder(out)
            let folders: [String]
            do {
                folders = try ShardMerge.shardFolders(directories)
            } catch {
                printError("error: \(error.description)")
                throw Exit.badScenario
            }
            let format = (try? Data(contentsOf: URL(fileURLWithPath: folders[0] + "/shard.json")))
                .flatMap { try? JSONDecoder().decode(Format.self, from: $0) }?.format
            if format == LoadShardRecord.currentFormat {
                try mergeLoad(folders)
                return
            }
            let merged: ShardMerge
            do {
                merged = try ShardMerge.merge(folders)
            } catch {
                printError("error: \(error.description)")
                throw Exit.badScenario
            }
            do {
                try merged.write(to: out)
            } catch {
                printError("error: cannot write the reports to \(out): \(error.localizedDescription)")
                throw Exit.internalError
            }
            if !quiet {
                print("\(merged.scenario): \(merged.shards) shard(s), \(merged.replications) replication(s) merged")
                print(Experiment.table(merged.comparison), terminator: "")
                print("→ \(out)/")
            }
        }

        /// Merges the shards of a distributed `meshsim load`.
        func mergeLoad(_ folders: [String]) throws {
            let result: LoadResult
            do {
                var shards: [LoadShardMerge.Shard] = []
                for folder in folders {
                    let record = try LoadShardMerge.read(folder)
                    let configuration: LoadConfiguration
                    do {
                        configuration = try Load.parse(record.arguments).makeConfiguration()
                    } catch {
                        throw LiveError.invalid(
                            "\(folder)/shard.json: its load arguments do not parse: \(Load.message(for: error))"
                        )
                    }
                    shards.append((folder, record, configuration))
                }
                result = try LoadShardMerge.merge(shards, version: meshsimVersion)
            } catch let error as LiveError {
                printError("error: \(error)")
                throw Exit.badScenario
            }
            let run = LiveRun(
                scenario: result.configuration.scenario,
                variant: result.configuration.variant,
                seed: result.configuration.seed,
                result: result
            )
            do {
                try LoadReport.write([run], to: out, version: meshsimVersion)
            } catch {
                printError("error: cannot write the reports to \(out): \(error.localizedDescription)")
                throw Exit.internalError
            }
            if !quiet {
                print("\(result.mergedShards ?? 1) load shard(s) merged")
                print(LoadReport.summaryLine(run))
                print("→ \(out)/")
            }
        }
    }
}
