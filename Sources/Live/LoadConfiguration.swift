//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

public import MeshModel
public import SimRandom

/// What `meshsim load` does: where it sends, how it paces, how long, and its limits.
public struct LoadConfiguration: Sendable {
    /// Open loop (a planned schedule of intended send times) or closed loop (each connection sends again as soon as
    /// its answer arrives).
    public enum Mode: Sendable, Equatable {
        /// Requests at planned times whatever the answers do; latency is measured from each intended time.
        case open(schedule: RateSchedule, arrival: ArrivalProcess)
        /// Maximum throughput: every connection keeps one request in flight.
        case closed
    }

    /// Target host (an IP address or name) and port.
    public var host: String
    /// The port.
    public var port: Int
    /// The request path (with any query).
    public var path = "/"
    /// The `Host` header.
    public var hostHeader: String
    /// Open or closed loop.
    public var mode: Mode
    /// Closed loop: the pause of a user between an answer and its next request (the scenario's think time);
    /// `nil` sends again at once.
    public var thinkTime: Distribution?
    /// Connections opened at the start (split over the event loops).
    public var connections = 16
    /// The pool may grow to this many connections when requests wait for one (open loop).
    public var maxConnections = 1024
    /// Event loops (threads).
    public var threads = 1
    /// End of the schedule, in ns from the start (the warm-up included).
    public var duration: Int64 = 10_000_000_000
    /// Requests intended before this (ns) are sent and shown in the time series but left out of the summary.
    public var warmup: Int64 = 0
    /// After `duration`, how long to wait for outstanding answers (ns).
    public var drain: Int64 = 5_000_000_000
    /// A request with no answer this long after its intended send time is a timeout (ns).
    public var timeout: Int64 = 5_000_000_000
    /// The most requests outstanding (sent or waiting for a connection); an arrival beyond it is dropped.
    public var maxInFlight = 100_000
    /// The width of a time-series window (ns).
    public var window: Int64 = 1_000_000_000
    /// Seed of Poisson arrivals.
    public var seed: UInt64 = 1
    /// The run is flagged when the send lag's p99 exceeds this (ns).
    public var lagThreshold: Int64 = 1_000_000
    /// Names for the CSVs.
    public var scenario = "load"
    /// The variant column.
    public var variant = "direct"

    /// Creates a configuration for `host:port`.
    public init(host: String, port: Int, mode: Mode) {
        self.host = host
        self.port = port
        self.hostHeader = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        self.mode = mode
    }

    /// Parses `http://host[:port][/path]`; throws `LiveError.invalid` for anything else.
    public static func parseURL(_ url: String) throws -> (host: String, port: Int, path: String) {
        guard url.hasPrefix("http://") else {
            throw LiveError.invalid("URL \(url): expected http://HOST[:PORT][/PATH] (https is not supported)")
        }
        let rest = url.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        let path = slash == rest.endIndex ? "/" : String(rest[slash...])
        var host = String(authority)
        var port = 80
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            host = String(authority[..<colon])
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else {
                throw LiveError.invalid("URL \(url): the port must be a number in 1...65535")
            }
            port = p
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw LiveError.invalid("URL \(url): no host") }
        return (host, port, path)
    }

    /// Checks the limits; throws `LiveError.invalid` naming the flag.
    public func validate() throws {
        if threads < 1 { throw LiveError.invalid("--threads must be at least 1") }
        if connections < 1 { throw LiveError.invalid("--connections must be at least 1") }
        if maxConnections < connections {
            throw LiveError.invalid(
                "--max-connections (\(maxConnections)) must be at least --connections (\(connections))"
            )
        }
        if duration <= 0 { throw LiveError.invalid("--duration must be positive") }
        if warmup < 0 || warmup >= duration { throw LiveError.invalid("--warmup must be in [0, duration)") }
        if drain < 0 { throw LiveError.invalid("--drain must not be negative") }
        if timeout <= 0 { throw LiveError.invalid("--timeout must be positive") }
        if maxInFlight < 1 { throw LiveError.invalid("--max-inflight must be at least 1") }
        if window <= 0 { throw LiveError.invalid("--window must be positive") }
    }
}
