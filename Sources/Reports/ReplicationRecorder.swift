//===----------------------------------------------------------------------===//
// meshsim — Reports
//===----------------------------------------------------------------------===//

/// Streams one replication's metrics: the summary over the measured span, and `timeseries.csv` rows as each
/// window closes, so memory stays flat however long the run.
///
/// Everything is counted at the moment it happens: an arrival in the window where it arrives, a finished request
/// (with its latency and outcome) in the window where it finishes. The summary counts requests that *arrived* in
/// [warmup, duration), whenever they finish.
public struct ReplicationRecorder {
    /// The statistics of measured requests (arrived in [warmup, duration)).
    public private(set) var summary = LatencyStats()
    /// Measured arrivals.
    public private(set) var summaryArrivals: UInt64 = 0
    /// Every finished request, measured or not.
    public private(set) var finished: UInt64 = 0
    /// The `timeseries.csv` rows written so far (without a header).
    public private(set) var timeseries = ""
    /// The end of the open window, in nanoseconds; call ``closeWindows(through:inFlight:queueDepth:)`` first when
    /// an event reaches it.
    public private(set) var nextBoundary: Int64

    private let warmup: Int64
    private let measureEnd: Int64
    private let window: Int64
    private let rowPrefix: String
    /// Policy counters over the measured span.
    public private(set) var summaryCounters = PolicyCounters()
    private var windowCounters = PolicyCounters()
    /// Sum and count of adaptive-concurrency-limit samples (window, summary), for their means.
    private var windowLimit = (sum: 0.0, count: 0)
    private var summaryLimit = (sum: 0.0, count: 0)
    private var windowStats = LatencyStats(resolution: .coarse)
    private var windowArrivals: UInt64 = 0
    private var windowStart: Int64 = 0

    /// Creates a recorder whose rows start with `rowPrefix` (``RowKey/prefix``, e.g. `"scenario,variant,42,sim,"`).
    public init(warmup: Int64, duration: Int64, window: Int64, rowPrefix: String) {
        self.warmup = warmup
        self.measureEnd = duration
        self.window = max(window, 1)
        self.rowPrefix = rowPrefix
        self.nextBoundary = self.window
    }

    /// Whether a request that arrived at `start` counts in the summary.
    @inline(__always)
    public func isMeasured(start: Int64) -> Bool { start >= warmup && start < measureEnd }

    /// Records an arrival at `now`.
    ///
    /// - Complexity: O(1).
    public mutating func recordArrival(at now: Int64) {
        windowArrivals &+= 1
        if isMeasured(start: now) { summaryArrivals &+= 1 }
    }

    /// Records a request that arrived at `start` and finished at `now`.
    ///
    /// - Complexity: O(1), no allocation.
    public mutating func recordFinish(start: Int64, now: Int64, outcome: RequestOutcome, attempts: Int) {
        let latency = now - start
        finished &+= 1
        windowStats.record(latency: latency, outcome: outcome, attempts: attempts)
        if isMeasured(start: start) { summary.record(latency: latency, outcome: outcome, attempts: attempts) }
    }

    /// Counts a policy event at `now`.
    ///
    /// - Complexity: O(1).
    @inline(__always)
    public mutating func count(_ kind: PolicyCounters.Kind, at now: Int64) {
        windowCounters.increment(kind)
        if now >= warmup && now < measureEnd { summaryCounters.increment(kind) }
    }

    /// Records the current adaptive concurrency limit of a replica at `now` (sampled when it changes).
    public mutating func sampleConcurrencyLimit(_ limit: Int, at now: Int64) {
        windowLimit.sum += Double(limit)
        windowLimit.count += 1
        if now >= warmup && now < measureEnd {
            summaryLimit.sum += Double(limit)
            summaryLimit.count += 1
        }
    }

    /// The mean sampled concurrency limit over the measured span, if any.
    public var summaryConcurrencyLimit: Double? {
        summaryLimit.count == 0 ? nil : summaryLimit.sum / Double(summaryLimit.count)
    }

    /// Closes every window that ends at or before `now`, writing one row each, with the gauges sampled now.
    public mutating func closeWindows(through now: Int64, inFlight: Int, queueDepth: Int) {
        while nextBoundary <= now {
            let row = MetricRow(
                stats: windowStats,
                arrivals: windowArrivals,
                unfinished: 0,
                seconds: Double(window) / 1e9
            )
            let limit = windowLimit.count == 0 ? nil : windowLimit.sum / Double(windowLimit.count)
            ReportCSV.appendTimeseriesRow(
                to: &timeseries,
                prefix: rowPrefix,
                windowStart: Double(windowStart) / 1e9,
                metrics: row,
                inFlight: inFlight,
                queueDepth: queueDepth,
                policyCells: windowCounters.cells(concurrencyLimit: limit)
            )
            windowCounters = PolicyCounters()
            windowLimit = (0, 0)
            windowStats.reset()
            windowArrivals = 0
            windowStart = nextBoundary
            nextBoundary += window
        }
    }

    /// The summary row, given the requests still outstanding at the end of the run.
    public func summaryRow(unfinished: UInt64) -> MetricRow {
        MetricRow(
            stats: summary,
            arrivals: summaryArrivals,
            unfinished: unfinished,
            seconds: Double(measureEnd - warmup) / 1e9
        )
    }
}
