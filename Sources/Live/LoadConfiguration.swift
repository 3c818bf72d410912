//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

public import SharedModel
import SimCore
public import SimRandom
import Spec

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// What `meshsim load` does: where it sends, how it paces, how long, and its limits.
public struct LoadConfiguration: Sendable {
    /// Open loop (a planned schedule of intended send times) or closed loop (each connection sends again as soon as
    /// its answer arrives).
    public enum Mode: Sendable, Equatable {
        /// Requests at planned times whatever the answers do; latency is measured from each intended time. The
        /// times come from the simulator's arrival generator.
        case open(ArrivalSchedule)
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
    /// Seed of the arrival plan (and of think times).
    public var seed: UInt64 = 1
    /// The client whose arrival streams the plan draws from: with the same seed, a scenario's client gets the
    /// arrival times the simulator gives it.
    public var client = "load"
    /// The run is flagged when the send lag's p99 exceeds this (ns).
    public var lagThreshold: Int64 = 1_000_000
    /// Names for the CSVs.
    public var scenario = "load"
    /// The variant column.
    public var variant = "direct"
    /// With ``shardCount`` above 1: this generator sends arrivals `shardIndex`, `shardIndex + shardCount`, … of the
    /// one global plan (`meshsim load --shard I/N`), so N generators together send what one would.
    public var shardIndex = 0
    /// How many generators share the plan.
    public var shardCount = 1
    /// When to start the schedule, in seconds since the Unix epoch (wall clock), so that the shards of a
    /// distributed run, started at different moments, begin their shares together; nil starts at once.
    public var startAt: Double?

    /// Creates a configuration for `host:port`.
    public init(host: String, port: Int, mode: Mode) {
        self.host = host
        self.port = port
        self.hostHeader = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        self.mode = mode
    }

    /// Parses `http://host[:port][/path][?query][#fragment]` (RFC 3986) into what goes on the wire.
    ///
    /// The scheme is `http` (any case); `https` is refused (the generator speaks plain HTTP/1.1 only). The host is a
    /// name, an IPv4 address or a bracketed IPv6 address (`http://[::1]:8080/`); the port defaults to 80. The
    /// fragment is dropped (it never goes to a server). The path and query are percent-encoded where a byte may not
    /// stand raw in a request target (a space, a non-ASCII byte, `"`, `<`, `>`, `\`, `^`, `` ` ``, `{`, `|`, `}`, a
    /// `%` not followed by two hex digits); existing `%XX` escapes are kept. Control characters (C0, including CR, LF
    /// and NUL, and DEL) are refused, so nothing can be injected into the request head, and so are credentials
    /// (`user:password@`).
    /// - Throws: `LiveError.invalid` with a sentence naming the problem.
    public static func parseURL(_ url: String) throws -> (host: String, port: Int, path: String) {
        if let bad = url.utf8.firstIndex(where: { $0 < 0x20 || $0 == 0x7F }) {
            let offset = url.utf8.distance(from: url.utf8.startIndex, to: bad)
            throw LiveError.invalid(
                "URL \(url.debugDescription): a control character (\(controlName(url.utf8[bad]))) at byte \(offset); "
                    + "a URL cannot carry CR, LF, NUL or other control characters"
            )
        }
        let lower = url.lowercased()
        if lower.hasPrefix("https://") {
            throw LiveError.invalid("URL \(url): https is not supported; only http:// URLs (plain HTTP/1.1, no TLS)")
        }
        guard lower.hasPrefix("http://") else {
            throw LiveError.invalid("URL \(url): expected http://HOST[:PORT][/PATH] (only http:// is supported)")
        }
        var rest = Substring(url.dropFirst("http://".count))
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        if authority.contains("@") {
            throw LiveError.invalid(
                "URL \(url): credentials (user:password@) are not supported; the generator sends no Authorization header"
            )
        }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw LiveError.invalid("URL \(url): an IPv6 address needs its closing ]")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { throw LiveError.invalid("URL \(url): expected :PORT after ]") }
                portText = after.dropFirst()
            }
            var address = in6_addr()
            guard inet_pton(AF_INET6, String(host), &address) == 1 else {
                throw LiveError.invalid("URL \(url): [\(host)] is not an IPv6 address")
            }
        } else {
            host = authority
            if let colon = authority.lastIndex(of: ":") {
                host = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            }
            let allowed = host.utf8.allSatisfy {
                ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 46
                    || $0 == 95
            }
            guard allowed else {
                throw LiveError.invalid(
                    "URL \(url): the host \(host.debugDescription) is not a name or an address (letters, digits, '-', '.')"
                )
            }
        }
        guard !host.isEmpty else { throw LiveError.invalid("URL \(url): no host") }
        var port = 80
        if let portText {
            guard portText.utf8.count <= 5, portText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let p = Int(portText),
                (1...65535).contains(p)
            else { throw LiveError.invalid("URL \(url): the port must be a number in 1...65535") }
            port = p
        }
        var target = String(rest[authorityEnd...])
        if target.isEmpty || target.hasPrefix("?") { target = "/" + target }
        return (String(host), port, try requestTarget(target, in: "URL \(url)"))
    }

    /// `text` as a request target (origin form, RFC 9112 §3.2.1): it must start with `/`; bytes that may not stand
    /// raw are percent-encoded (see ``parseURL(_:)``); control characters are refused.
    /// - Parameter context: what `text` is, for the error message (e.g. "URL http://…").
    /// - Throws: `LiveError.invalid`.
    public static func requestTarget(_ text: String, in context: String) throws -> String {
        let bytes = Array(text.utf8)
        if let bad = bytes.firstIndex(where: { $0 < 0x20 || $0 == 0x7F }) {
            throw LiveError.invalid(
                "\(context): the path \(text.debugDescription) has a control character (\(controlName(bytes[bad]))), "
                    + "which cannot go into a request"
            )
        }
        guard bytes.first == 47 else {
            throw LiveError.invalid("\(context): the path \(text.debugDescription) must start with /")
        }
        func isHex(_ b: UInt8) -> Bool { (b >= 48 && b <= 57) || (b >= 65 && b <= 70) || (b >= 97 && b <= 102) }
        let hex: [UInt8] = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for (i, byte) in bytes.enumerated() {
            let raw: Bool
            switch byte {
            case 48...57, 65...90, 97...122: raw = true
            // unreserved, sub-delims, ':', '@', '/', '?'
            case 45, 46, 95, 126, 33, 36, 38, 39, 40, 41, 42, 43, 44, 59, 61, 58, 64, 47, 63: raw = true
            case 37: raw = i + 2 < bytes.count && isHex(bytes[i + 1]) && isHex(bytes[i + 2])
            default: raw = false
            }
            if raw {
                out.append(byte)
            } else {
                out += [37, hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A readable name for a control byte.
    private static func controlName(_ byte: UInt8) -> String {
        switch byte {
        case 0: return "NUL"
        case 9: return "tab"
        case 10: return "LF"
        case 13: return "CR"
        case 127: return "DEL"
        default: return "0x" + String(byte, radix: 16, uppercase: true)
        }
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
        let longest = RunLimits.duration.upperBound.nanoseconds
        let range = "[\(RunLimits.duration.lowerBound.formatted), \(RunLimits.duration.upperBound.formatted)]"
        if !RunLimits.duration.contains(SimDuration(nanoseconds: duration)) {
            throw LiveError.invalid("--duration must be in \(range)")
        }
        if warmup < 0 || warmup >= duration { throw LiveError.invalid("--warmup must be in [0, duration)") }
        if drain < 0 || drain > longest {
            throw LiveError.invalid("--drain must be in [0, \(RunLimits.duration.upperBound.formatted)]")
        }
        if timeout <= 0 || timeout > longest { throw LiveError.invalid("--timeout must be in \(range)") }
        if lagThreshold <= 0 || lagThreshold > longest {
            throw LiveError.invalid("--lag-threshold must be in \(range)")
        }
        if maxInFlight < 1 { throw LiveError.invalid("--max-inflight must be at least 1") }
        if shardCount < 1 || !(0..<shardCount).contains(shardIndex) {
            throw LiveError.invalid("--shard \(shardIndex)/\(shardCount): expected I/N with I from 0 to N-1")
        }
        if shardCount > 1, mode == .closed {
            throw LiveError.invalid(
                "--shard needs an open loop (--rate or --schedule): a closed loop has no global schedule to share; "
                    + "run N closed-loop generators with a share of --connections each instead"
            )
        }
        if let problem = RunLimits.windowProblem(
            window: SimDuration(nanoseconds: window),
            duration: SimDuration(nanoseconds: duration)
        ) {
            throw LiveError.invalid("--window: \(problem)")
        }
        if path.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F }) {
            throw LiveError.invalid("the request path \(path.debugDescription) must be percent-encoded ASCII")
        }
    }
}
