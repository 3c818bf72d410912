//===----------------------------------------------------------------------===//
// meshsim — Reports
//===----------------------------------------------------------------------===//

/// How a row was produced: the `mode` column.
public enum RunMode: String, Sendable {
    /// By simulation (`meshsim run`).
    case simulated = "sim"
    /// On real sockets (`meshsim load`, `meshsim live`).
    case live
}

/// Who a row is about: the first four columns of `summary.csv` and `timeseries.csv`.
public struct RowKey: Sendable, Equatable {
    /// The scenario's name.
    public var scenario: String
    /// The variant's name.
    public var variant: String
    /// The seed.
    public var seed: UInt64
    /// Simulated or live.
    public var mode: RunMode

    /// A row key.
    public init(scenario: String, variant: String, seed: UInt64, mode: RunMode) {
        self.scenario = scenario
        self.variant = variant
        self.seed = seed
        self.mode = mode
    }

    /// The key's cells with their trailing comma, as a row starts.
    public var prefix: String {
        CSVFormat.field(scenario) + "," + CSVFormat.field(variant) + "," + String(seed) + "," + mode.rawValue + ","
    }
}

/// The one writer of `summary.csv` and `timeseries.csv`, for simulated and live runs alike (the columns are in
/// `docs/output-format.md`). A cell a mode cannot know is empty, which means undefined.
public enum ReportCSV {
    /// The header of `summary.csv`.
    public static let summaryHeader =
        (["scenario", "variant", "seed", "mode"] + MetricRow.columns + [
            "unfinished", "events", "mean_in_flight", "utilization",
        ] + PolicyCounters.columns).joined(separator: ",")

    /// The header of `timeseries.csv`.
    public static let timeseriesHeader =
        (["scenario", "variant", "seed", "mode", "t_s"] + MetricRow.columns + [
            "in_flight", "queue_depth",
        ] + PolicyCounters.columns).joined(separator: ",")

    /// One `summary.csv` row (with its newline).
    ///
    /// - Parameters:
    ///   - events: kernel events processed (simulation only).
    ///   - utilization: busy workers over capacity (simulation only).
    ///   - policyCells: ``PolicyCounters/cells(concurrencyLimit:)``, or `nil` when the run cannot count them (a
    ///     proxy meshsim does not control).
    public static func summaryRow(
        _ key: RowKey,
        metrics: MetricRow,
        events: UInt64?,
        utilization: Double?,
        policyCells: [String]?
    ) -> String {
        var row = key.prefix + metrics.cells.joined(separator: ",")
        row += "," + String(metrics.unfinished)
        row += "," + (events.map { String($0) } ?? "")
        row += "," + CSVFormat.fixed(metrics.meanInFlight, digits: 4)
        row += "," + CSVFormat.fixed(utilization, digits: 6)
        for cell in policyCells ?? Array(repeating: "", count: PolicyCounters.columns.count) { row += "," + cell }
        return row + "\n"
    }

    /// Appends one `timeseries.csv` row (with its newline) to `text`: the window starting `windowStart` seconds in,
    /// its metrics, the in-flight and queue gauges, and the policy counters (`nil`: unknown, empty cells).
    ///
    /// - Complexity: O(columns), appending in place.
    public static func appendTimeseriesRow(
        to text: inout String,
        prefix: String,
        windowStart: Double,
        metrics: MetricRow,
        inFlight: Int,
        queueDepth: Int,
        policyCells: [String]?
    ) {
        text += prefix
        text += CSVFormat.fixed(windowStart, digits: 3)
        for cell in metrics.cells {
            text += ","
            text += cell
        }
        text += ",\(inFlight),\(queueDepth)"
        if let policyCells {
            for cell in policyCells {
                text += ","
                text += cell
            }
        } else {
            text += String(repeating: ",", count: PolicyCounters.columns.count)
        }
        text += "\n"
    }
}
