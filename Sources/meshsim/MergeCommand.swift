//===----------------------------------------------------------------------===//
// meshsim — command line: merging shards
//===----------------------------------------------------------------------===//

import ArgumentParser
import Foundation
import Runner

extension MeshSim {
    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Merge the shards of a run (`run --shard I/N`) into one set of reports.",
            discussion: """
                Each DIR is a shard's folder (it holds shard.json) or a folder of shard folders, as the shared
                volume of a Kubernetes Indexed Job holds them. The shards must come from one scenario, seeds,
                settings and meshsim version, and all N must be there. Writes summary.csv, timeseries.csv,
                comparison.csv (and sweep.csv) byte-identical to the run in one process, and run.json adding up
                the shards' work. See docs/scale-out.md.

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

        func run() throws {
            try prepareOutputFolder(out)
            let merged: ShardMerge
            do {
                merged = try ShardMerge.merge(try ShardMerge.shardFolders(directories))
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
    }
}
