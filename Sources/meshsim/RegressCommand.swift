//===----------------------------------------------------------------------===//
// meshsim — command line: the regression gate
//===----------------------------------------------------------------------===//

import ArgumentParser
import Foundation
import Regress

extension MeshSim {
    struct RegressCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "regress",
            abstract: "Compare results with a baseline, metric by metric, and fail on what got worse (a CI gate).",
            discussion: """
                Reads summary.csv (and timeseries.csv, when there) from --baseline and --current: each a folder that
                `meshsim run`, `live` or `load` wrote, or a folder of such folders (one per scenario, as
                results/baseline/). Every variant of every scenario is compared on each metric that has a
                tolerance: by default success_rate 0.1pt, goodput_rps 1%, p50_ms 5%, p99_ms 5%; --tolerances FILE
                (YAML, `p99_ms: +5%`, `metric: off`) and --tolerance METRIC=TOL change them. A tolerance is a
                share (5%), an amount in the metric's unit (0.5), or percentage points of a rate (0.1pt); a sign,
                if given, must point the way the metric gets worse (+ for latencies, - for success and goodput).

                Simulated results with the same seeds are deterministic: a move beyond the tolerance counts. Live
                results, or other seeds, count only when the move is also significant: Welch's t-test at --alpha on
                the per-seed values (two seeds a side or more), else on the per-window values of the time series.
                See docs/ci.md.

                Prints the metrics that got worse or better, and a summary line. --junit FILE writes JUnit XML
                (a test case per variant and metric; regressions are failures), --markdown FILE a summary for a
                pull request or $GITHUB_STEP_SUMMARY.
                Exit codes: 0 no regression, 1 a regression (or a variant missing from --current), 64 usage error
                (bad flags or tolerances), 65 results that cannot be read.
                """
        )

        @Option(help: "The baseline results folder.") var baseline: String
        @Option(help: "The current results folder.") var current: String
        @Option(help: "A YAML file of tolerances (metric: tolerance).") var tolerances: String?
        @Option(name: .customLong("tolerance"), help: "A tolerance, METRIC=TOL (repeatable; after --tolerances).")
        var tolerance: [String] = []
        @Option(parsing: .unconditional, help: "Significance level of the tests (default 0.05).") var alpha = 0.05
        @Option(help: "Write JUnit XML here.") var junit: String?
        @Option(help: "Write a Markdown summary here.") var markdown: String?

        func validate() throws {
            guard alpha > 0, alpha < 1 else { throw ValidationError("--alpha must be in (0, 1), got \(alpha)") }
            do {
                _ = try RegressMetrics.resolve(file: tolerances, overrides: tolerance)
            } catch {
                throw ValidationError(error.description)
            }
        }

        func run() throws {
            let chosen: [(metric: String, tolerance: Tolerance)]
            do {
                chosen = try RegressMetrics.resolve(file: tolerances, overrides: tolerance)
            } catch {
                throw ValidationError(error.description)
            }
            let before: ResultSet
            let after: ResultSet
            do {
                before = try ResultSet.load(baseline)
                after = try ResultSet.load(current)
            } catch {
                printError("error: \(error)")
                throw Exit.badScenario
            }
            let report = RegressReport(
                findings: Regression(tolerances: chosen, alpha: alpha).compare(baseline: before, current: after)
            )
            print(report.table(), terminator: "")
            for (path, text) in [(junit, report.junit()), (markdown, report.markdown())] {
                guard let path else { continue }
                guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
                    printError("error: cannot write \(path)")
                    throw ExitCode(64)
                }
            }
            if report.fails { throw ExitCode(1) }
        }
    }
}
