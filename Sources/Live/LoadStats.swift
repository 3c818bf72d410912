//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

public import Histogram
public import Reports

/// How a live request ended, beyond its outcome.
public enum LoadErrorKind: Int, Sendable, CaseIterable {
    /// The connection was refused (nothing listens).
    case refused
    /// The connection was reset or closed before the whole answer arrived.
    case reset
    /// No answer within the timeout of the intended send time.
    case timeout
    /// A 5xx answer.
    case status5xx
    /// A 4xx answer.
    case status4xx
    /// Not sent: the in-flight cap was reached at its intended time.
    case dropped
    /// Another connect error (unreachable, name resolution, connect timeout).
    case connect
    /// The answer could not be parsed.
    case protocolError

    /// The name used in the JSON and the live line.
    public var name: String {
        switch self {
        case .refused: return "refused"
        case .reset: return "reset"
        case .timeout: return "timeout"
        case .status5xx: return "5xx"
        case .status4xx: return "4xx"
        case .dropped: return "dropped"
        case .connect: return "connect"
        case .protocolError: return "protocol"
        }
    }

    /// The outcome column it counts in (the simulator's four outcomes).
    var outcome: RequestOutcome {
        switch self {
        case .refused, .dropped: return .rejected
        case .timeout: return .timedOut
        case .reset, .status5xx, .status4xx, .connect, .protocolError: return .failed
        }
    }
}

/// A new histogram with the layout every live histogram shares (ns units, 1 µs resolution, 1 h, `digits`), so
/// `add` never traps.
func makeHistogram(_ resolution: LatencyStats.Resolution) -> Histogram<UInt64> {
    Histogram<UInt64>(
        lowestDiscernibleValue: 1000,
        highestTrackableValue: LatencyStats.highestTrackable,
        numberOfSignificantValueDigits: resolution == .fine ? .three : .two
    )
}

/// What one event loop measured over a span: one time-series window, or the whole measured span.
public struct LoadStats: Sendable {
    /// Response time from the intended send time, with outcomes (the simulator's latency).
    public var response: LatencyStats
    /// Service time: from the actual write to the end of the answer (summary only; empty in a window).
    public var service: Histogram<UInt64>
    /// Send lag: from the intended send time to the actual write (summary only; empty in a window).
    public var lag: Histogram<UInt64>
    /// Arrivals (intended sends), dropped ones included.
    public var arrivals: UInt64 = 0
    /// Requests written to a connection.
    public var sent: UInt64 = 0
    /// Failures by kind, indexed by `LoadErrorKind.rawValue`.
    public var errors = [UInt64](repeating: 0, count: LoadErrorKind.allCases.count)
    /// Sum over finished requests of their response time (ns), for the mean in flight.
    public var latencySum: Double = 0

    /// Empty statistics at `resolution`.
    public init(resolution: LatencyStats.Resolution) {
        response = LatencyStats(resolution: resolution)
        service = makeHistogram(resolution)
        lag = makeHistogram(resolution)
    }

    /// Adds `other` (same resolution).
    public mutating func add(_ other: LoadStats) {
        response.add(other.response)
        service.add(other.service)
        lag.add(other.lag)
        arrivals += other.arrivals
        sent += other.sent
        for i in errors.indices { errors[i] += other.errors[i] }
        latencySum += other.latencySum
    }

    /// Records a finished request; one that was never `sent` (dropped, no connection) has no latency and stays out
    /// of the latency histogram, though its time outstanding counts towards the mean in flight.
    ///
    /// - Complexity: O(1), no allocation.
    @inline(__always)
    mutating func finish(latency: Int64, outcome: RequestOutcome, error: LoadErrorKind?, sent: Bool = true) {
        if sent {
            response.record(latency: max(latency, 0), outcome: outcome, attempts: 1)
        } else {
            response.recordUnmeasured(outcome: outcome)
        }
        latencySum += Double(max(latency, 0))
        if let error { errors[error.rawValue] += 1 }
    }

    /// Records a write: its send lag.
    @inline(__always)
    mutating func send(lag value: Int64) {
        sent += 1
        lag.record(UInt64(clamping: max(value, 0)))
    }

    /// Records an answer's service time.
    @inline(__always)
    mutating func serve(_ value: Int64) {
        service.record(UInt64(clamping: max(value, 0)))
    }

    /// The count of one error kind.
    public func count(_ kind: LoadErrorKind) -> UInt64 { errors[kind.rawValue] }
}

/// One window of the time series from one loop, with the gauges at its end.
public struct LoadWindow: Sendable, Codable {
    /// Window index (start = index × width).
    public var index: Int
    /// What finished in it.
    public var stats: LoadStats
    /// Requests outstanding at its end (sent or waiting for a connection).
    public var inFlight: Int
    /// Requests waiting for a connection at its end.
    public var waiting: Int
    /// Open connections at its end.
    public var connections: Int
}

/// Connection counts of one loop.
public struct ConnectionCounts: Sendable, Equatable, Codable {
    /// Connections established.
    public var opened = 0
    /// Connect attempts that failed.
    public var failed = 0
    /// Connections the server closed (or reset) that were then replaced.
    public var reconnects = 0
    /// Connections closed by the server (gracefully or not).
    public var closedByPeer = 0
    /// The most open at once.
    public var peak = 0

    /// Adds another loop's counts (peaks add: the loops hold their connections at the same time).
    mutating func add(_ other: ConnectionCounts) {
        opened += other.opened
        failed += other.failed
        reconnects += other.reconnects
        closedByPeer += other.closedByPeer
        peak += other.peak
    }
}

/// What the time series keeps of a merged window once it is complete: its row and gauges, not its histograms, so
/// the memory of a run does not grow with its length beyond one small row per window.
public struct LoadWindowRow: Sendable {
    /// Window index (start = index × width).
    public var index: Int
    /// The simulator's metrics for the window.
    public var row: MetricRow
    /// Requests written in the window.
    public var sent: UInt64
    /// Requests outstanding at its end.
    public var inFlight: Int
    /// Requests waiting for a connection at its end.
    public var waiting: Int
    /// Open connections at its end.
    public var connections: Int

    /// Summarises `window` of width `seconds`.
    public init(_ window: LoadWindow, seconds: Double) {
        index = window.index
        row = MetricRow(stats: window.stats.response, arrivals: window.stats.arrivals, unfinished: 0, seconds: seconds)
        sent = window.stats.sent
        inFlight = window.inFlight
        waiting = window.waiting
        connections = window.connections
    }
}
