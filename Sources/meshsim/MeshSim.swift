//===----------------------------------------------------------------------===//
// meshsim — command line
//===----------------------------------------------------------------------===//

import ArgumentParser
import Foundation
import MeshModel
import Runner
import Scenario
import SimCore
import Spec

/// The `meshsim` command: a thin layer that parses flags, loads the scenario, runs it and writes reports.
@main
struct MeshSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshsim",
        abstract: "Compare service-mesh strategies (balancing, timeouts, retries) by simulation.",
        discussion: """
            Exit codes:
              0   success
              1   a load run flagged by its self-check, with --strict
              64  usage error (bad flags or flag values)
              65  bad scenario (every problem is listed with file, line, column and key path)
              66  a run stopped at its memory budget (--max-memory): requests piled up without bound
              69  a proxy binary is missing or a port is in use (the process holding it is named)
              70  internal error
              130 interrupted (SIGINT/SIGTERM); live keeps the runs that finished
            """,
        version: meshsimVersion,
        subcommands: [
            Run.self, Validate.self, Serve.self, Load.self, Live.self, ProxyCommand.self, Certs.self,
            RegressCommand.self, Merge.self,
        ],
        defaultSubcommand: Run.self
    )
}

/// Exit codes, as in sysexits.h.
enum Exit {
    static let badScenario = ExitCode(65)
    /// A run stopped because the model passed its memory budget (`run --max-memory`).
    static let memoryBudget = ExitCode(66)
    static let internalError = ExitCode(70)
}

/// Prints a line on standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Finds the bundled scenario `name` (e.g. `quickstart.yaml`): in ./scenarios, or beside the package of the binary.
func bundledScenario(_ name: String) -> String? {
    var candidates = ["scenarios/" + name]
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<5 {
        candidates.append(directory.appendingPathComponent("scenarios/" + name).path)
        directory = directory.deletingLastPathComponent()
    }
    return candidates.first { FileManager.default.fileExists(atPath: $0) }
}

/// Loads a scenario and keeps the named variants (all when `variants` is empty), printing every problem and exiting
/// 65 when the file or a name is invalid.
func loadScenario(_ path: String, variants: [String]) throws -> Scenario {
    do {
        return try loadScenario(path).selecting(variants: variants)
    } catch let failure as ScenarioValidationFailure {
        printError(failure.description)
        throw Exit.badScenario
    }
}

/// Loads a scenario, printing every problem and exiting 65 when it is invalid.
func loadScenario(_ path: String) throws -> Scenario {
    do {
        return try Scenario.load(path: path)
    } catch let failure as ScenarioValidationFailure {
        printError(failure.description)
        throw Exit.badScenario
    }
}

extension MeshSim {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a scenario's variants over its seeds and write summary, timeseries and comparison CSVs.",
            discussion: """
                With no SCENARIO, runs the bundled quickstart comparison (scenarios/quickstart.yaml).
                Output goes to results/<scenario name>/ unless --out is given: summary.csv, timeseries.csv,
                comparison.csv and run.json (and sweep.csv for a scenario with a sweep). The same scenario and seed
                give byte-identical CSVs whatever --jobs is.

                --shard I/N runs only shard I (0 to N-1) of the run's variant × seed replications and writes its
                rows with shard.json (default folder: results/<scenario name>/shards/I); `meshsim merge` puts the N
                shards back together, byte-identical to the run in one process.

                Exit codes: 0 success, 64 usage error, 65 bad scenario, 66 memory budget passed, 70 internal error.
                """
        )

        @Argument(help: "The scenario file (YAML).")
        var scenario: String?

        @Option(help: "Output folder (default: results/<scenario name>/).")
        var out: String?

        @Option(parsing: .unconditional, help: "Replications per variant (overrides the scenario's 'seeds').")
        var seeds: Int?

        @Option(
            parsing: .unconditional,
            help: "Seed of the first replication; replication i uses seed + i (overrides the scenario's 'seed')."
        )
        var seed: UInt64?

        @Option(
            parsing: .unconditional,
            help: "Simulated duration, with a unit (e.g. 30s, 2m); overrides the scenario's 'duration'."
        )
        var duration: String?

        @Option(name: .customLong("variant"), help: "Run only this variant (repeatable).")
        var variants: [String] = []

        @Option(parsing: .unconditional, help: "Replications run at once (default: all cores).")
        var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

        @Option(
            parsing: .unconditional,
            help: ArgumentHelp(
                "Memory the model may use, with a unit (e.g. 512MiB, 4GiB; default: a quarter of the machine's memory).",
                discussion: "A replication whose requests pile up (an unbounded queue under overload) stops at its "
                    + "share of this, with exit 66."
            )
        )
        var maxMemory: String?

        @Option(
            parsing: .unconditional,
            help: ArgumentHelp(
                "Run only shard I of N (I from 0 to N-1, as JOB_COMPLETION_INDEX) and write it for `meshsim merge`.",
                valueName: "I/N"
            )
        )
        var shard: String?

        @Flag(help: "No progress line and no table.")
        var quiet = false

        func validate() throws {
            if let shard, Shard(parsing: shard) == nil {
                throw ValidationError(
                    "--shard \(shard): expected I/N, a shard number I from 0 to N-1 and a count N from 1 to "
                        + "\(Shard.maxCount) (e.g. 0/4)"
                )
            }
            if let seeds, !(1...10_000).contains(seeds) { throw ValidationError("--seeds must be in 1...10000") }
            if jobs < 1 { throw ValidationError("--jobs must be at least 1") }
            if let maxMemory, MemorySize.parse(maxMemory) == nil {
                throw ValidationError(
                    "--max-memory \(maxMemory): expected a size with a unit, from 16MiB to 1PiB (e.g. 512MiB, 4GiB)"
                )
            }
            // The same range as the scenario file's 'duration'.
            if let duration { _ = try parseDuration(duration, flag: "--duration") }
        }

        func run() throws {
            guard let path = scenario ?? bundledScenario("quickstart.yaml") else {
                printError("error: the bundled scenarios/quickstart.yaml was not found; give a scenario file")
                throw ExitCode(64)
            }
            var loaded = try loadScenario(path, variants: variants)
            if let seeds { loaded.seeds = seeds }
            if let seed { loaded.seed = seed }
            if let duration { loaded = loaded.withDuration(try SimDuration(parsing: duration)) }
            if let problem = loaded.limitProblem {
                printError(
                    "error: \(problem); use a smaller --seeds or --duration, or a wider 'window' in the scenario"
                )
                throw ExitCode(64)
            }

            // The output folder is checked before any work, so that a run of minutes is not lost at the end.
            let shard = self.shard.flatMap(Shard.init(parsing:))
            let directory = out ?? "results/" + loaded.name + (shard.map { "/shards/\($0.index)" } ?? "")
            try prepareOutputFolder(directory)
            let showProgress = !quiet && isatty(STDERR_FILENO) == 1
            let budget = maxMemory.flatMap(MemorySize.parse) ?? MemorySize.defaultBudget
            let experiment = Experiment.run(
                loaded,
                jobs: jobs,
                maxMemory: budget,
                shard: shard,
                progress: showProgress ? Self.printProgress : nil
            )
            if showProgress { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
            if let first = experiment.memoryOverruns.first, let overrun = first.result.memoryOverrun {
                printError(MemorySize.message(overrun, path: path, variant: first.variant, seed: first.seed))
                throw Exit.memoryBudget
            }
            if let stall = experiment.stalls.first, let at = stall.result.stalledAt {
                printError(
                    "\(path): error: simulated time stopped advancing at \(at.seconds) s (variant \(stall.variant), seed "
                        + "\(stall.seed)): a zero-delay loop, such as closed-loop users with zero think time calling a "
                        + "service with zero service time and no network delay"
                )
                throw Exit.badScenario
            }
            do {
                if shard != nil {
                    try experiment.writeShard(to: directory)
                } else {
                    try experiment.write(to: directory)
                }
            } catch {
                printError("error: cannot write the reports to \(directory): \(error.localizedDescription)")
                throw Exit.internalError
            }
            if let shard {
                if !quiet {
                    print(
                        "\(loaded.name): shard \(shard): \(experiment.replications.count) of "
                            + "\(loaded.variants.count * loaded.seeds) replication(s), \(experiment.events) events in "
                            + "\(String(format: "%.2f", experiment.wallSeconds)) s → \(directory)/"
                    )
                }
                return
            }
            if !quiet {
                print(
                    "\(loaded.name): \(loaded.variants.count) variant(s) × \(loaded.seeds) seed(s), ranked by \(loaded.rankBy)"
                )
                print(experiment.table, terminator: "")
                let rate = Double(experiment.events) / max(experiment.wallSeconds, 1e-9)
                print(
                    "\(experiment.events) events in \(String(format: "%.2f", experiment.wallSeconds)) s "
                        + "(\(String(format: "%.1f", rate / 1e6)) M events/s, \(experiment.jobs) jobs) → \(directory)/"
                )
            }
        }

        @Sendable static func printProgress(done: Double, events: UInt64, wall: Double) {
            guard wall >= 2 else { return }
            let eta = done > 0 ? wall * (1 - done) / done : 0
            let line = String(
                format: "\r\u{1B}[2Ksimulated %5.1f%%  %.1f M events/s  ETA %.0f s",
                done * 100,
                Double(events) / wall / 1e6,
                eta
            )
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a scenario file and list every problem, without running it.",
            discussion: "Exit codes: 0 valid, 64 usage error, 65 bad scenario."
        )

        @Argument(help: "The scenario file (YAML).")
        var scenario: String

        func run() throws {
            let loaded = try loadScenario(scenario)
            let names = loaded.variants.map(\.name).joined(separator: ", ")
            print(
                "\(scenario): ok — scenario '\(loaded.name)', \(loaded.variants.count) variant(s) (\(names)), \(loaded.seeds) seed(s)"
            )
        }
    }
}
