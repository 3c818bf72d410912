//===----------------------------------------------------------------------===//
// meshsim — Runner
//===----------------------------------------------------------------------===//

import Foundation
import MeshModel
import Reports
import Scenario
import SimCore
import Spec

extension Experiment {
    /// The text of `summary.csv`: one row per (variant, seed).
    public var summaryCSV: String {
        var text = ReportCSV.summaryHeader + "\n"
        for replication in replications {
            let result = replication.result
            text += ReportCSV.summaryRow(
                RowKey(scenario: scenario.name, variant: replication.variant, seed: replication.seed, mode: .simulated),
                metrics: result.summary,
                events: UInt64(result.events),
                utilization: result.summary.utilization,
                policyCells: result.counters.cells(concurrencyLimit: result.concurrencyLimit)
            )
        }
        return text
    }

    /// The text of `timeseries.csv`: one row per (variant, seed, window).
    public var timeseriesCSV: String {
        var text = ReportCSV.timeseriesHeader + "\n"
        for replication in replications { text += replication.result.timeseries }
        return text
    }

    /// The text of `comparison.csv`: one row per variant, best first.
    public var comparisonCSV: String { Self.comparisonCSV(scenario: scenario.name, comparison) }

    /// The text of `comparison.csv` for `rows` (best first) of the scenario named `scenario`.
    static func comparisonCSV(scenario: String, _ rows: [VariantComparison]) -> String {
        var header = ["scenario", "variant", "rank", "seeds"]
        for metric in Experiment.comparisonMetrics { header += [metric + "_mean", metric + "_ci95"] }
        var text = header.joined(separator: ",") + "\n"
        for row in rows {
            var cells = [CSVFormat.field(scenario), CSVFormat.field(row.variant), String(row.rank), String(row.seeds)]
            for metric in Experiment.comparisonMetrics {
                let digits = metric == "success_rate" ? 6 : 4
                let value = row.metrics[metric] ?? (nil, nil)
                cells += [
                    CSVFormat.fixed(value.mean, digits: digits), CSVFormat.fixed(value.halfWidth, digits: digits),
                ]
            }
            text += cells.joined(separator: ",") + "\n"
        }
        return text
    }

    /// The text of `sweep.csv`, or nil without a sweep: per variant, the entry of `variants` it comes from and its
    /// value on each axis, so a notebook can pivot on them.
    public var sweepCSV: String? {
        guard !scenario.sweepAxes.isEmpty else { return nil }
        var text = (["scenario", "variant", "base"] + scenario.sweepAxes).map(CSVFormat.field).joined(separator: ",")
        text += "\n"
        for variant in scenario.variants {
            let cells = [scenario.name, variant.name, variant.base] + variant.axisLabels
            text += cells.map(CSVFormat.field).joined(separator: ",") + "\n"
        }
        return text
    }

    /// The provenance record written as `run.json`.
    public var runJSON: String {
        RunRecord(
            scenario: scenario.name,
            scenarioFile: scenario.file,
            scenarioSHA256: SHA256.hex(Array(scenario.source.utf8)),
            seeds: Set(replications.map(\.seed)).sorted(),
            variants: scenario.variants.map(\.name),
            rankBy: scenario.rankBy,
            shards: nil,
            jobs: jobs,
            wallSeconds: wallSeconds,
            events: events,
            requests: replications.reduce(0) { $0 + $1.result.summary.requests },
            completed: replications.reduce(0) { $0 + $1.result.completed },
            simulatedSeconds: replications.reduce(0.0) { $0 + $1.result.endTime.seconds }
        ).json
    }

    /// Writes `summary.csv`, `timeseries.csv`, `comparison.csv`, `run.json` (and `sweep.csv` with a sweep) into
    /// `directory`, creating it.
    public func write(to directory: String) throws {
        try Self.writeReports(
            summary: summaryCSV,
            timeseries: timeseriesCSV,
            comparison: comparisonCSV,
            run: runJSON,
            sweep: sweepCSV,
            to: directory
        )
    }

    /// Writes a run's report files into `directory`, creating it: the one writer for a run and a merge of shards.
    static func writeReports(
        summary: String,
        timeseries: String,
        comparison: String,
        run: String,
        sweep: String?,
        to directory: String
    ) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var files = [
            ("summary.csv", summary), ("timeseries.csv", timeseries), ("comparison.csv", comparison), ("run.json", run),
        ]
        if let sweep { files.append(("sweep.csv", sweep)) }
        for (name, text) in files {
            try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        }
    }

    /// The ranked table printed on the terminal.
    public var table: String { Self.table(comparison) }

    /// The ranked table of `ranked` (best first), aligned in columns.
    public static func table(_ ranked: [VariantComparison]) -> String {
        let comparison = ranked
        let header = ["rank", "variant", "success", "±95%", "p50 ms", "p99 ms", "p99.9 ms", "goodput/s", "attempts"]
        var rows: [[String]] = [header]
        for row in comparison {
            func mean(_ m: String, _ digits: Int) -> String {
                CSVFormat.fixed(row.metrics[m]?.mean ?? nil, digits: digits)
            }
            let success =
                (row.metrics["success_rate"]?.mean ?? nil).map { CSVFormat.fixed($0 * 100, digits: 3) + "%" } ?? "-"
            let ci = (row.metrics["success_rate"]?.halfWidth ?? nil).map { CSVFormat.fixed($0 * 100, digits: 3) } ?? "-"
            rows.append([
                String(row.rank), row.variant, success, ci, mean("p50_ms", 3), mean("p99_ms", 3), mean("p999_ms", 3),
                mean("goodput_rps", 1), mean("attempts_per_request", 3),
            ])
        }
        var widths = Array(repeating: 0, count: header.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var text = ""
        for row in rows {
            let cells = row.enumerated().map { i, cell in
                i == 1
                    ? cell + String(repeating: " ", count: widths[i] - cell.count)
                    : String(repeating: " ", count: widths[i] - cell.count) + cell
            }
            text += cells.joined(separator: "  ") + "\n"
        }
        return text
    }
}
