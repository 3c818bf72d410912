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
    public var comparisonCSV: String {
        var header = ["scenario", "variant", "rank", "seeds"]
        for metric in Experiment.comparisonMetrics { header += [metric + "_mean", metric + "_ci95"] }
        var text = header.joined(separator: ",") + "\n"
        for row in comparison {
            var cells = [
                CSVFormat.field(scenario.name), CSVFormat.field(row.variant), String(row.rank), String(row.seeds),
            ]
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

    /// The provenance record written as `run.json`.
    public var runJSON: String {
        let seeds = Set(replications.map(\.seed)).sorted()
        let simulated = replications.reduce(0.0) { $0 + $1.result.endTime.seconds }
        let quote = JSONFormat.quote
        let lines = [
            "  \"meshsim_version\": \(quote(meshsimVersion))",
            "  \"scenario\": \(quote(scenario.name))",
            "  \"scenario_file\": \(quote(scenario.file))",
            "  \"scenario_sha256\": \(quote(SHA256.hex(Array(scenario.source.utf8))))",
            "  \"seeds\": [\(seeds.map(String.init).joined(separator: ", "))]",
            "  \"variants\": [\(scenario.variants.map { quote($0.name) }.joined(separator: ", "))]",
            "  \"rank_by\": \(quote(scenario.rankBy))",
            "  \"jobs\": \(jobs)",
            "  \"wall_seconds\": \(CSVFormat.fixed(wallSeconds, digits: 3))",
            "  \"events\": \(events)",
            "  \"events_per_second\": \(CSVFormat.fixed(Double(events) / max(wallSeconds, 1e-9), digits: 0))",
            "  \"requests\": \(replications.reduce(UInt64(0)) { $0 + $1.result.summary.requests })",
            "  \"completed_requests\": \(replications.reduce(UInt64(0)) { $0 + $1.result.completed })",
            "  \"completed_requests_per_second\": \(CSVFormat.fixed(Double(replications.reduce(UInt64(0)) { $0 + $1.result.completed }) / max(wallSeconds, 1e-9), digits: 0))",
            "  \"simulated_seconds\": \(CSVFormat.fixed(simulated, digits: 3))",
        ]
        return "{\n" + lines.joined(separator: ",\n") + "\n}\n"
    }

    /// Writes `summary.csv`, `timeseries.csv`, `comparison.csv` and `run.json` into `directory`, creating it.
    public func write(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let files = [
            ("summary.csv", summaryCSV), ("timeseries.csv", timeseriesCSV), ("comparison.csv", comparisonCSV),
            ("run.json", runJSON),
        ]
        for (name, text) in files {
            try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        }
    }

    /// The ranked table printed on the terminal.
    public var table: String {
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
