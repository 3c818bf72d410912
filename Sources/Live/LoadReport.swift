//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

import Foundation
import Histogram
public import Reports
import SharedModel
import Spec

/// One live run as it goes into the output files: the result and the identifying columns.
public struct LiveRun: Sendable {
    /// The scenario column.
    public var scenario: String
    /// The variant column (for `live`, the scenario's variant; for `load`, `direct` unless named).
    public var variant: String
    /// The seed column.
    public var seed: UInt64
    /// What was measured.
    public var result: LoadResult

    /// The row key of its CSV rows.
    public var key: RowKey { RowKey(scenario: scenario, variant: variant, seed: seed, mode: .live) }

    /// Creates a run record.
    public init(scenario: String, variant: String, seed: UInt64, result: LoadResult) {
        self.scenario = scenario
        self.variant = variant
        self.seed = seed
        self.result = result
    }
}

/// Writes live runs in the simulator's file formats (`mode` = `live`), plus HdrHistogram percentile files.
public enum LoadReport {
    /// The text of `summary.csv`: one row per run. Columns the live half cannot know (`events`, `utilization`, the
    /// policy counters of a proxy it does not control) are empty, which means undefined.
    public static func summaryCSV(_ runs: [LiveRun]) -> String {
        var text = ReportCSV.summaryHeader + "\n"
        for run in runs {
            text += ReportCSV.summaryRow(
                run.key,
                metrics: run.result.summaryRow,
                events: nil,
                utilization: nil,
                policyCells: nil
            )
        }
        return text
    }

    /// The text of `timeseries.csv`: one row per run and window.
    public static func timeseriesCSV(_ runs: [LiveRun]) -> String {
        var text = ReportCSV.timeseriesHeader + "\n"
        for run in runs {
            let width = Double(run.result.configuration.window) / 1e9
            let prefix = run.key.prefix
            for window in run.result.windows {
                ReportCSV.appendTimeseriesRow(
                    to: &text,
                    prefix: prefix,
                    windowStart: Double(window.index) * width,
                    metrics: window.row,
                    inFlight: window.inFlight,
                    queueDepth: window.waiting,
                    policyCells: nil
                )
            }
        }
        return text
    }

    /// Percentiles (ms) of a histogram in ns, or nulls when empty.
    static func percentiles(_ histogram: Histogram<UInt64>) -> String {
        guard histogram.totalCount > 0 else {
            return "{\"count\": 0}"
        }
        let points: [(String, Double)] = [("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9), ("p9999", 99.99)]
        var parts = ["\"count\": \(histogram.totalCount)"]
        for (name, p) in points {
            parts.append("\"\(name)_ms\": \(formatMs(Double(histogram.valueAtPercentile(p)) / 1e6))")
        }
        parts.append("\"max_ms\": \(formatMs(Double(histogram.max) / 1e6))")
        parts.append("\"mean_ms\": \(formatMs(histogram.mean / 1e6))")
        return "{" + parts.joined(separator: ", ") + "}"
    }

    /// Escapes a JSON string.
    static func quote(_ s: String) -> String { JSONFormat.quote(s) }

    /// One run as a JSON object (configuration, planned vs achieved rate, the three latency views, errors by kind,
    /// connections, self-check).
    public static func json(_ run: LiveRun, indent: String = "  ") -> String {
        let r = run.result
        let c = r.configuration
        var lines: [String] = []
        func add(_ key: String, _ value: String) { lines.append("\(indent)  \(quote(key)): \(value)") }
        add("scenario", quote(run.scenario))
        add("variant", quote(run.variant))
        add("seed", String(run.seed))
        add("mode", quote("live"))
        add("target", quote("http://\(c.host):\(c.port)\(c.path)"))
        switch c.mode {
        case .open(let schedule):
            add("load", quote("open"))
            add("arrival", quote(schedule.process.rawValue))
        case .closed:
            add("load", quote("closed"))
        }
        if c.shardCount > 1 { add("shard", quote("\(c.shardIndex)/\(c.shardCount)")) }
        if let shards = r.mergedShards { add("shards", String(shards)) }
        add("threads", String(c.threads))
        add("connections", String(c.connections))
        add("max_connections", String(c.maxConnections))
        add("max_inflight", String(c.maxInFlight))
        add("duration_s", formatMs(Double(c.duration) / 1e9))
        add("warmup_s", formatMs(Double(c.warmup) / 1e9))
        add("timeout_s", formatMs(Double(c.timeout) / 1e9))
        if let planned = r.plannedRequests {
            add("planned_requests", CSVFormat.fixed(planned, digits: 1))
            add("planned_rps", CSVFormat.fixed(planned / r.measuredSeconds, digits: 3))
            let error = planned > 0 ? (Double(r.total.arrivals) - planned) / planned : nil
            add("schedule_error", CSVFormat.fixed(error, digits: 6))
        }
        add("requests", String(r.total.arrivals))
        add("sent", String(r.total.sent))
        add("achieved_rps", CSVFormat.fixed(r.achievedRate, digits: 3))
        add("completed", String(r.total.response.requests))
        add("unfinished", String(r.unfinished))
        add("elapsed_s", formatMs(r.elapsed))
        add("response_time", percentiles(r.total.response.histogram))
        add("service_time", percentiles(r.total.service))
        add("send_lag", percentiles(r.total.lag))
        let errors = LoadErrorKind.allCases.map { "\(quote($0.name)): \(r.total.count($0))" }
        add("errors", "{" + errors.joined(separator: ", ") + "}")
        let k = r.connections
        add(
            "connection_counts",
            "{\"opened\": \(k.opened), \"failed\": \(k.failed), \"closed_by_peer\": \(k.closedByPeer), \"reconnects\": \(k.reconnects), \"peak\": \(k.peak)}"
        )
        add("valid", r.flags.isEmpty ? "true" : "false")
        add("flags", "[" + r.flags.map(quote).joined(separator: ", ") + "]")
        return "\(indent){\n" + lines.joined(separator: ",\n") + "\n\(indent)}"
    }

    /// The HdrHistogram percentile distribution (plain text, values in ms) that the standard plotter reads.
    public static func hgrm(_ histogram: Histogram<UInt64>) -> String {
        var text = ""
        histogram.outputPercentileDistribution(to: &text, outputValueUnitScalingRatio: 1e6)
        return text
    }

    /// Writes `summary.csv`, `timeseries.csv`, `run.json` and, per run, `<variant>-latency.hgrm` (response time from
    /// the intended send) and `<variant>-service.hgrm` (from the actual send) into `directory`.
    ///
    /// - Parameter namePerRun: whether the `.hgrm` files carry the variant and seed in their names (default: when
    ///   there is more than one run); a caller that writes after each of several runs passes `true` from the first.
    public static func write(_ runs: [LiveRun], to directory: String, version: String, namePerRun: Bool? = nil) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let document =
            "{\n  \"meshsim_version\": \(quote(version)),\n  \"mode\": \"live\",\n  \"runs\": [\n"
            + runs.map { json($0, indent: "    ") }.joined(separator: ",\n") + "\n  ]\n}\n"
        var files = [
            ("summary.csv", summaryCSV(runs)), ("timeseries.csv", timeseriesCSV(runs)), ("run.json", document),
        ]
        for run in runs {
            let stem = (namePerRun ?? (runs.count > 1)) ? "\(run.variant)-\(run.seed)-" : ""
            let safe = String(stem.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
            files.append(("\(safe)latency.hgrm", hgrm(run.result.total.response.histogram)))
            files.append(("\(safe)service.hgrm", hgrm(run.result.total.service)))
        }
        for (name, text) in files {
            try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        }
    }

    /// The live line printed once per window: achieved rate, p50, p99, errors, in flight.
    public static func liveLine(_ window: LoadWindow, width: Int64) -> String {
        let seconds = Double(width) / 1e9
        let stats = window.stats
        let errors = stats.errors.reduce(0, +)
        let p50 = stats.response.percentileMilliseconds(50).map { formatMs($0) } ?? "-"
        let p99 = stats.response.percentileMilliseconds(99).map { formatMs($0) } ?? "-"
        let t = CSVFormat.fixed(Double(window.index) * seconds, digits: 0)
        return "t=\(t)s  sent \(CSVFormat.fixed(Double(stats.sent) / seconds, digits: 1))/s  "
            + "done \(stats.response.requests)  p50 \(p50) ms  p99 \(p99) ms  errors \(errors)  "
            + "in flight \(window.inFlight)  connections \(window.connections)"
    }

    /// The one-line summary printed at the end of a run.
    public static func summaryLine(_ run: LiveRun) -> String {
        let r = run.result
        let row = r.summaryRow
        func ms(_ v: Double?) -> String { v.map { formatMs($0) } ?? "-" }
        let errors = LoadErrorKind.allCases.compactMap { kind -> String? in
            let n = r.total.count(kind)
            return n > 0 ? "\(kind.name) \(n)" : nil
        }
        let lag = r.total.lag.totalCount > 0 ? Double(r.total.lag.valueAtPercentile(99)) / 1e6 : nil
        let service = r.total.service.totalCount > 0 ? Double(r.total.service.valueAtPercentile(99)) / 1e6 : nil
        var planned = ""
        if let p = r.plannedRequests { planned = " (planned \(CSVFormat.fixed(p / r.measuredSeconds, digits: 1))/s)" }
        return
            "\(run.variant): \(row.requests) requests, sent \(CSVFormat.fixed(r.achievedRate, digits: 1))/s\(planned), "
            + "success \(ms(row.successRate.map { $0 * 100 }))%, p50 \(ms(row.p50Ms)) ms, p99 \(ms(row.p99Ms)) ms, "
            + "p99.9 \(ms(row.p999Ms)) ms, max \(ms(row.maxMs)) ms; service p99 \(ms(service)) ms, "
            + "send lag p99 \(ms(lag)) ms; errors: \(errors.isEmpty ? "none" : errors.joined(separator: ", ")); "
            + "connections \(r.connections.opened) opened, \(r.connections.reconnects) reconnects"
    }
}
