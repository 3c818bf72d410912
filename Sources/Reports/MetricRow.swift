//===----------------------------------------------------------------------===//
// meshsim — Reports
//===----------------------------------------------------------------------===//

/// The headline metrics of a set of requests: one `summary.csv` row, or one `timeseries.csv` window.
public struct MetricRow: Sendable, Equatable {
    /// Requests counted (in a summary: those that arrived in the measured span, finished or not).
    public var requests: UInt64 = 0
    /// Requests answered successfully.
    public var ok: UInt64 = 0
    /// Requests answered with an error.
    public var failed: UInt64 = 0
    /// Requests that timed out.
    public var timedOut: UInt64 = 0
    /// Requests rejected (503, refused, no endpoint).
    public var rejected: UInt64 = 0
    /// Requests still outstanding when the run ended (summary only).
    public var unfinished: UInt64 = 0
    /// `ok / requests`.
    public var successRate: Double?
    /// Arrivals per second.
    public var offeredRPS: Double?
    /// Successes per second.
    public var goodputRPS: Double?
    /// Latency statistics in milliseconds.
    public var meanMs: Double?, p50Ms: Double?, p90Ms: Double?, p99Ms: Double?, p999Ms: Double?, maxMs: Double?
    /// Attempts per finished request (1 without retries).
    public var attemptsPerRequest: Double?
    /// Time-averaged client requests in flight over the measured span (L in Little's law; summary only).
    public var meanInFlight: Double?
    /// Busy worker time over available worker time (running replicas only) in the measured span (summary only).
    public var utilization: Double?

    /// The CSV columns, in order, that follow the identifying columns.
    public static let columns = [
        "requests", "ok", "failed", "timed_out", "rejected", "success_rate", "offered_rps", "goodput_rps", "mean_ms",
        "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "attempts_per_request",
    ]

    /// Creates an empty row.
    public init() {}

    /// The metrics of `stats` over a span of `seconds`, with `arrivals` arrivals and `unfinished` requests left over.
    public init(stats: LatencyStats, arrivals: UInt64, unfinished: UInt64, seconds: Double) {
        requests = stats.requests + unfinished
        ok = stats.count(.ok)
        failed = stats.count(.failed)
        timedOut = stats.count(.timedOut)
        rejected = stats.count(.rejected)
        self.unfinished = unfinished
        successRate = requests == 0 ? nil : Double(ok) / Double(requests)
        offeredRPS = seconds > 0 ? Double(arrivals) / seconds : nil
        goodputRPS = seconds > 0 ? Double(ok) / seconds : nil
        meanMs = stats.meanMilliseconds
        p50Ms = stats.percentileMilliseconds(50)
        p90Ms = stats.percentileMilliseconds(90)
        p99Ms = stats.percentileMilliseconds(99)
        p999Ms = stats.percentileMilliseconds(99.9)
        maxMs = stats.measured == 0 ? nil : Double(stats.maxLatency) / 1e6
        attemptsPerRequest = stats.requests == 0 ? nil : Double(stats.attempts) / Double(stats.requests)
    }

    /// The row's cells for ``columns``.
    public var cells: [String] {
        [
            String(requests), String(ok), String(failed), String(timedOut), String(rejected),
            CSVFormat.fixed(successRate, digits: 6), CSVFormat.fixed(offeredRPS, digits: 3),
            CSVFormat.fixed(goodputRPS, digits: 3), CSVFormat.fixed(meanMs, digits: 4),
            CSVFormat.fixed(p50Ms, digits: 4), CSVFormat.fixed(p90Ms, digits: 4), CSVFormat.fixed(p99Ms, digits: 4),
            CSVFormat.fixed(p999Ms, digits: 4), CSVFormat.fixed(maxMs, digits: 4),
            CSVFormat.fixed(attemptsPerRequest, digits: 4),
        ]
    }

    /// A named metric's value, for comparisons across seeds.
    public func value(of metric: String) -> Double? {
        switch metric {
        case "requests": return Double(requests)
        case "ok": return Double(ok)
        case "failed": return Double(failed)
        case "timed_out": return Double(timedOut)
        case "rejected": return Double(rejected)
        case "success_rate": return successRate
        case "offered_rps": return offeredRPS
        case "goodput_rps": return goodputRPS
        case "mean_ms": return meanMs
        case "p50_ms": return p50Ms
        case "p90_ms": return p90Ms
        case "p99_ms": return p99Ms
        case "p999_ms": return p999Ms
        case "max_ms": return maxMs
        case "attempts_per_request": return attemptsPerRequest
        case "mean_in_flight": return meanInFlight
        case "utilization": return utilization
        default: return nil
        }
    }
}
