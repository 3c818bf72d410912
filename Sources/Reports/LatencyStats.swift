//===----------------------------------------------------------------------===//
// meshsim — Reports
//===----------------------------------------------------------------------===//

public import Histogram

/// Outcome counts and a latency distribution for a set of finished requests.
///
/// Latencies are recorded in nanoseconds in an HDR histogram; the mean and maximum are kept exactly beside it.
/// Two layouts exist: ``Resolution/fine`` (three significant digits from 1 ns, percentiles within 0.1%) for
/// summaries, and ``Resolution/coarse`` (two significant digits from 1 µs, within 1%, a tenth of the memory and of
/// the cost to reset and read) for time-series windows. Statistics of the same resolution can be merged.
public struct LatencyStats: Sendable {
    /// The largest latency the histogram tracks (one hour); longer ones are clamped there (the maximum stays exact).
    public static let highestTrackable: UInt64 = 3_600_000_000_000

    /// Finished requests.
    public private(set) var requests: UInt64 = 0
    /// Finished requests that have a latency (all of them, except requests never sent: see
    /// ``recordUnmeasured(outcome:)``).
    public private(set) var measured: UInt64 = 0
    /// Finished requests by outcome, indexed by `RequestOutcome.rawValue`.
    public private(set) var outcomes: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    /// Attempts made for the finished requests (1 each, plus retries).
    public private(set) var attempts: UInt64 = 0
    /// Sum of latencies in nanoseconds.
    public private(set) var latencySum: Double = 0
    /// The largest latency in nanoseconds.
    public private(set) var maxLatency: UInt64 = 0
    /// The latency distribution (nanoseconds).
    public private(set) var histogram: Histogram<UInt64>

    /// The precision of the latency histogram.
    public enum Resolution: Sendable {
        /// Three significant digits from 1 ns.
        case fine
        /// Two significant digits from 1 µs.
        case coarse
    }

    /// Creates empty statistics.
    public init(resolution: Resolution = .fine) {
        switch resolution {
        case .fine:
            histogram = Histogram(
                lowestDiscernibleValue: 1,
                highestTrackableValue: LatencyStats.highestTrackable,
                numberOfSignificantValueDigits: .three
            )
        case .coarse:
            histogram = Histogram(
                lowestDiscernibleValue: 1_000,
                highestTrackableValue: LatencyStats.highestTrackable,
                numberOfSignificantValueDigits: .two
            )
        }
    }

    /// Records one finished request.
    ///
    /// - Complexity: O(1), no allocation.
    public mutating func record(latency: Int64, outcome: RequestOutcome, attempts: Int) {
        let value = UInt64(max(latency, 0))
        requests &+= 1
        switch outcome {
        case .ok: outcomes.0 &+= 1
        case .failed: outcomes.1 &+= 1
        case .timedOut: outcomes.2 &+= 1
        case .rejected: outcomes.3 &+= 1
        }
        self.attempts &+= UInt64(attempts)
        measured &+= 1
        latencySum += Double(value)
        if value > maxLatency { maxLatency = value }
        _ = histogram.record(min(value, LatencyStats.highestTrackable))
    }

    /// Records a finished request that has no latency: one never sent (dropped by its own client, or with no
    /// connection to send it on). It counts in ``requests`` and its outcome, but not in the latency statistics.
    ///
    /// - Complexity: O(1), no allocation.
    public mutating func recordUnmeasured(outcome: RequestOutcome) {
        requests &+= 1
        switch outcome {
        case .ok: outcomes.0 &+= 1
        case .failed: outcomes.1 &+= 1
        case .timedOut: outcomes.2 &+= 1
        case .rejected: outcomes.3 &+= 1
        }
        attempts &+= 1
    }

    /// Finished requests that ended with `outcome`.
    public func count(_ outcome: RequestOutcome) -> UInt64 {
        switch outcome {
        case .ok: return outcomes.0
        case .failed: return outcomes.1
        case .timedOut: return outcomes.2
        case .rejected: return outcomes.3
        }
    }

    /// The mean latency in milliseconds (`nil` when no finished request has a latency).
    public var meanMilliseconds: Double? { measured == 0 ? nil : latencySum / Double(measured) / 1e6 }

    /// The latency at `percentile` (0–100) in milliseconds (`nil` when no finished request has a latency).
    public func percentileMilliseconds(_ percentile: Double) -> Double? {
        measured == 0 ? nil : Double(histogram.valueAtPercentile(percentile)) / 1e6
    }

    /// Adds another set of statistics into this one.
    public mutating func add(_ other: LatencyStats) {
        requests &+= other.requests
        measured &+= other.measured
        outcomes.0 &+= other.outcomes.0
        outcomes.1 &+= other.outcomes.1
        outcomes.2 &+= other.outcomes.2
        outcomes.3 &+= other.outcomes.3
        attempts &+= other.attempts
        latencySum += other.latencySum
        maxLatency = max(maxLatency, other.maxLatency)
        histogram.add(other.histogram)
    }

    /// Empties the statistics, keeping the histogram's storage.
    public mutating func reset() {
        requests = 0
        measured = 0
        outcomes = (0, 0, 0, 0)
        attempts = 0
        latencySum = 0
        maxLatency = 0
        histogram.reset()
    }
}

/// Written as its counts and a ``HistogramRecord`` of its histogram (shards of a distributed load run keep these).
extension LatencyStats: Codable {
    private enum CodingKeys: String, CodingKey {
        case requests, measured, outcomes, attempts, latencySum, maxLatency, histogram
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let outcomes = try container.decode([UInt64].self, forKey: .outcomes)
        guard outcomes.count == 4 else {
            throw DecodingError.dataCorruptedError(
                forKey: .outcomes,
                in: container,
                debugDescription: "expected 4 outcome counts (ok, failed, timed out, rejected)"
            )
        }
        let record = try container.decode(HistogramRecord.self, forKey: .histogram)
        do {
            histogram = try record.histogram()
        } catch {
            throw DecodingError.dataCorruptedError(
                forKey: .histogram,
                in: container,
                debugDescription: error.description
            )
        }
        requests = try container.decode(UInt64.self, forKey: .requests)
        measured = try container.decode(UInt64.self, forKey: .measured)
        self.outcomes = (outcomes[0], outcomes[1], outcomes[2], outcomes[3])
        attempts = try container.decode(UInt64.self, forKey: .attempts)
        latencySum = try container.decode(Double.self, forKey: .latencySum)
        maxLatency = try container.decode(UInt64.self, forKey: .maxLatency)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(requests, forKey: .requests)
        try container.encode(measured, forKey: .measured)
        try container.encode([outcomes.0, outcomes.1, outcomes.2, outcomes.3], forKey: .outcomes)
        try container.encode(attempts, forKey: .attempts)
        try container.encode(latencySum, forKey: .latencySum)
        try container.encode(maxLatency, forKey: .maxLatency)
        try container.encode(HistogramRecord(histogram), forKey: .histogram)
    }
}
