//===----------------------------------------------------------------------===//
// meshsim — LiveHTTP
//===----------------------------------------------------------------------===//

public import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

// What a proxy needs beyond the backends' and the generator's parsers: the parts of a head it routes on, the header
// lines it may pass on (hop-by-hop ones removed, RFC 9110 §7.6.1), and a body passed through piece by piece with its
// framing checked on the way (RFC 9112 §6, §7.1), so that a proxy never disagrees with the next hop on where a
// message ends.

/// How a message body is delimited (RFC 9112 §6.3).
public enum HTTPBodyFraming: Sendable, Equatable {
    /// No body.
    case none
    /// Exactly this many bytes.
    case contentLength(Int)
    /// Chunked transfer coding, up to the zero-size chunk and its trailers.
    case chunked
    /// Up to the end of the connection (a response with neither header).
    case untilClose
}

/// Passes a message body through as it arrives, framing bytes included, checking chunk syntax on the way.
public struct HTTPBodyForwarder: Sendable {
    private var skipper: BodySkipper

    /// A forwarder for a body framed as `framing`; chunk-size and trailer lines may be `maxLineBytes` long.
    public init(_ framing: HTTPBodyFraming, maxLineBytes: Int = 4096) {
        skipper = BodySkipper(maxLineBytes: maxLineBytes)
        switch framing {
        case .none: skipper.state = .done
        case .contentLength(let n): skipper.state = n > 0 ? .fixed(remaining: n) : .done
        case .chunked: skipper.state = .chunkSize
        case .untilClose: skipper.state = .untilClose
        }
    }

    /// Whether the whole body has passed.
    public var isComplete: Bool { skipper.state == .done }

    /// Whether the body runs to the end of the connection.
    public var endsAtClose: Bool { skipper.state == .untilClose }

    /// Takes the bytes of the body that `buffer` holds (unchanged, chunk framing included), leaving what follows the
    /// body in `buffer`; the slice may be empty.
    ///
    /// - Throws: ``HTTPParseError/invalidChunk`` on a malformed chunk-size line or chunk end.
    /// - Complexity: O(bytes taken); the slice shares `buffer`'s storage.
    public mutating func take(_ buffer: inout ByteBuffer) throws(HTTPParseError) -> ByteBuffer {
        var probe = buffer
        _ = try skipper.skip(&probe)
        let length = probe.readerIndex - buffer.readerIndex
        return buffer.readSlice(length: length)!
    }
}

/// The head of a request or response as a proxy sees it: its bytes, and what routing and framing need from them.
///
/// Ranges index ``bytes`` (whose reader index is 0).
public struct HTTPForwardHead: Sendable {
    /// The head as received, from the start line to the final empty line.
    public var bytes: ByteBuffer
    /// The start line, without its CRLF.
    public var startLine: Range<Int>
    /// The header lines to pass on, each with its CRLF: every line but the hop-by-hop ones (`Connection`,
    /// `Keep-Alive`, `Proxy-Connection`, `TE`, `Upgrade`, and those the `Connection` header names).
    ///
    /// `Transfer-Encoding` and `Content-Length` are always kept: the body is passed on with its framing unchanged,
    /// and a `Connection` header naming them cannot make the next hop read the body differently. In a request,
    /// `Expect: 100-continue` is left out too (see ``expectsContinue``).
    public var forwardedLines: [Range<Int>]
    /// HTTP/1.0 rather than HTTP/1.1.
    public var isHTTP10: Bool
    /// Whether the sender allows another message on the connection.
    public var keepAlive: Bool
    /// How the body is delimited.
    public var framing: HTTPBodyFraming
    /// A request: its method is `HEAD`.
    public var isHeadMethod: Bool
    /// A request: it sent `Expect: 100-continue` (RFC 9110 §10.1.1); that line is not among ``forwardedLines``, so
    /// that the proxy answers the expectation itself, as Envoy does by default.
    public var expectsContinue = false
    /// A request: the target's path (up to any `?`).
    public var path: Range<Int>
    /// A request: the `Host` value, if sent.
    public var host: Range<Int>?
    /// A response: the status code (0 for a request).
    public var status: Int

    /// The bytes of `range` as a string.
    public func string(_ range: Range<Int>) -> String {
        bytes.getString(at: range.lowerBound, length: range.count) ?? ""
    }
}

/// Reads request or response heads for a proxy, incrementally, with caps on size and header count.
///
/// It applies the checks of ``HTTPRequestParser`` and ``HTTPResponseParser`` (start line, CRLF line ends, token
/// names, no controls in values, one `Host`, framing headers) and in addition counts header lines against
/// ``maxHeaderCount`` (over it: ``HTTPParseError/headerTooLarge``, answered 431 as RFC 6585 §5 allows).
public struct HTTPHeadReader: Sendable {
    /// The most bytes a head may take.
    public let maxHeadBytes: Int
    /// The most header lines a head may have.
    public let maxHeaderCount: Int
    private var scanned = 0
    private var startLineChecked = false

    /// Creates a reader with the given caps.
    public init(maxHeadBytes: Int = 8 * 1024, maxHeaderCount: Int = 100) {
        self.maxHeadBytes = maxHeadBytes
        self.maxHeaderCount = maxHeaderCount
    }

    /// Forgets a partial head (for a reused connection).
    public mutating func reset() {
        scanned = 0
        startLineChecked = false
    }

    /// Reads the next request head from `buffer`, consuming it; `nil` while it has not fully arrived.
    ///
    /// - Complexity: O(new bytes) per call; one array of line ranges per head.
    public mutating func readRequestHead(_ buffer: inout ByteBuffer) throws(HTTPParseError) -> HTTPForwardHead? {
        let maxHeaderCount = self.maxHeaderCount
        guard
            let found = try scanHead(
                buffer,
                scanned: &scanned,
                maxHeadBytes: maxHeadBytes,
                parse: { (bytes, end) throws(HTTPParseError) in
                    try Self.parseRequest(bytes, end: end, maxHeaderCount: maxHeaderCount)
                }
            )
        else {
            if !startLineChecked { try checkStartLine(buffer) }
            return nil
        }
        startLineChecked = false
        var head = found.head
        head.bytes = buffer.readSlice(length: found.length)!
        return head
    }

    /// Reads the next final response head from `buffer`, consuming it (interim 1xx heads other than 101 are dropped);
    /// `nil` while it has not fully arrived. `requestWasHead`: the request was `HEAD`, so the response has no body.
    ///
    /// - Complexity: O(new bytes) per call; one array of line ranges per head.
    public mutating func readResponseHead(_ buffer: inout ByteBuffer, requestWasHead: Bool) throws(HTTPParseError)
        -> HTTPForwardHead?
    {
        let maxHeaderCount = self.maxHeaderCount
        while true {
            guard
                let found = try scanHead(
                    buffer,
                    scanned: &scanned,
                    maxHeadBytes: maxHeadBytes,
                    parse: { (bytes, end) throws(HTTPParseError) in
                        try Self.parseResponse(bytes, end: end, maxHeaderCount: maxHeaderCount, isHead: requestWasHead)
                    }
                )
            else { return nil }
            let slice = buffer.readSlice(length: found.length)!
            if found.head.status < 200 && found.head.status != 101 { continue }
            var head = found.head
            head.bytes = slice
            return head
        }
    }

    /// Checks the start line of a request head that has not fully arrived, once its line end is there (so that an
    /// HTTP/0.9 line is refused at once rather than waited on).
    private mutating func checkStartLine(_ buffer: ByteBuffer) throws(HTTPParseError) {
        startLineChecked = try HTTPRequestParser.checkArrivedStartLine(buffer)
    }

    private static func parseRequest(_ bytes: UnsafeRawBufferPointer, end: Int, maxHeaderCount: Int)
        throws(HTTPParseError) -> HTTPForwardHead
    {
        let line = try HTTPRequestParser.parseStartLine(bytes, end: end)
        let fields = try parseHeaderLines(bytes, from: line.headersStart, to: end)
        if fields.hostLines > 1 || (!line.http10 && fields.hostLines == 0) { throw .invalidHost }
        if fields.hasTransferEncoding && (fields.transferEncodingLines != 1 || !fields.chunkedOnly) {
            throw .unsupportedTransferEncoding
        }
        let lines = try forwardableLines(
            bytes,
            from: line.headersStart,
            to: end,
            maxHeaderCount: maxHeaderCount,
            isRequest: true
        )
        var lineStart = 0
        while lineStart + 1 < end && bytes[lineStart] == ASCII.cr && bytes[lineStart + 1] == ASCII.lf {
            lineStart += 2
        }
        var pathEnd = line.target.lowerBound
        while pathEnd < line.target.upperBound && bytes[pathEnd] != 63 { pathEnd += 1 }
        let keepAlive = line.http10 ? (fields.keepAlive && !fields.close) : !fields.close
        let framing: HTTPBodyFraming
        if fields.chunked {
            framing = .chunked
        } else if let length = fields.contentLength, length > 0 {
            framing = .contentLength(length)
        } else {
            framing = .none
        }
        var head = HTTPForwardHead(
            bytes: ByteBuffer(),
            startLine: lineStart..<(line.headersStart - 2),
            forwardedLines: lines.kept,
            isHTTP10: line.http10,
            keepAlive: keepAlive,
            framing: framing,
            isHeadMethod: line.isHead,
            path: line.target.lowerBound..<pathEnd,
            host: lines.host,
            status: 0
        )
        head.expectsContinue = lines.expectsContinue
        return head
    }

    private static func parseResponse(
        _ bytes: UnsafeRawBufferPointer,
        end: Int,
        maxHeaderCount: Int,
        isHead: Bool
    ) throws(HTTPParseError) -> HTTPForwardHead {
        let (minor, status, lineEnd) = try HTTPResponseParser.parseStatusLine(bytes, end: end)
        let fields = try parseHeaderLines(bytes, from: lineEnd + 2, to: end)
        let lines = try forwardableLines(
            bytes,
            from: lineEnd + 2,
            to: end,
            maxHeaderCount: maxHeaderCount,
            isRequest: false
        )
        var keepAlive = minor == ASCII.zero ? (fields.keepAlive && !fields.close) : !fields.close
        let framing: HTTPBodyFraming
        if isHead || status < 200 || status == 204 || status == 304 {
            framing = .none
        } else if fields.chunked {
            framing = .chunked
        } else if let length = fields.contentLength {
            framing = length == 0 ? .none : .contentLength(length)
        } else {
            framing = .untilClose
            keepAlive = false
        }
        return HTTPForwardHead(
            bytes: ByteBuffer(),
            startLine: 0..<lineEnd,
            forwardedLines: lines.kept,
            isHTTP10: minor == ASCII.zero,
            keepAlive: keepAlive,
            framing: framing,
            isHeadMethod: false,
            path: 0..<0,
            host: nil,
            status: status
        )
    }
}

/// The header lines of a head that a proxy passes on, the `Host` value, and (in a request) whether it expects
/// `100-continue`, from lines already checked by ``parseHeaderLines(_:from:to:)``.
///
/// - Throws: ``HTTPParseError/headerTooLarge`` past `maxHeaderCount` lines.
/// - Complexity: O(head length × names listed in `Connection`), one array.
func forwardableLines(
    _ bytes: UnsafeRawBufferPointer,
    from start: Int,
    to end: Int,
    maxHeaderCount: Int,
    isRequest: Bool
) throws(HTTPParseError) -> (kept: [Range<Int>], host: Range<Int>?, expectsContinue: Bool) {
    /// One header line: the whole line with CRLF, its name, its trimmed value.
    struct Line {
        var line: Range<Int>
        var name: Range<Int>
        var value: Range<Int>
    }
    var lines: [Line] = []
    var lineStart = start
    while lineStart < end - 2 {
        var lineEnd = lineStart
        while lineEnd < end && bytes[lineEnd] != ASCII.cr { lineEnd += 1 }
        var colon = lineStart
        while colon < lineEnd && bytes[colon] != ASCII.colon { colon += 1 }
        var a = colon + 1
        var b = lineEnd
        while a < b && (bytes[a] == ASCII.space || bytes[a] == ASCII.tab) { a += 1 }
        while b > a && (bytes[b - 1] == ASCII.space || bytes[b - 1] == ASCII.tab) { b -= 1 }
        lines.append(Line(line: lineStart..<(lineEnd + 2), name: lineStart..<colon, value: a..<b))
        if lines.count > maxHeaderCount { throw .headerTooLarge }
        lineStart = lineEnd + 2
    }
    // The names the Connection header lists are hop-by-hop too (RFC 9110 §7.6.1).
    var listed: [Range<Int>] = []
    var host: Range<Int>?
    for line in lines {
        if equalsIgnoringCase(bytes, line.name, "connection") {
            var s = line.value.lowerBound
            while s < line.value.upperBound {
                var e = s
                while e < line.value.upperBound && bytes[e] != 44 { e += 1 }
                var a = s
                var b = e
                while a < b && (bytes[a] == ASCII.space || bytes[a] == ASCII.tab) { a += 1 }
                while b > a && (bytes[b - 1] == ASCII.space || bytes[b - 1] == ASCII.tab) { b -= 1 }
                if a < b { listed.append(a..<b) }
                s = e + 1
            }
        } else if equalsIgnoringCase(bytes, line.name, "host") {
            host = line.value
        }
    }
    var kept: [Range<Int>] = []
    var expectsContinue = false
    kept.reserveCapacity(lines.count)
    for line in lines {
        let name = line.name
        if isRequest && equalsIgnoringCase(bytes, name, "expect")
            && equalsIgnoringCase(bytes, line.value, "100-continue")
        {
            expectsContinue = true
            continue
        }
        if equalsIgnoringCase(bytes, name, "content-length") || equalsIgnoringCase(bytes, name, "transfer-encoding")
            || equalsIgnoringCase(bytes, name, "host")
        {
            kept.append(line.line)
            continue
        }
        if equalsIgnoringCase(bytes, name, "connection") || equalsIgnoringCase(bytes, name, "keep-alive")
            || equalsIgnoringCase(bytes, name, "proxy-connection") || equalsIgnoringCase(bytes, name, "te")
            || equalsIgnoringCase(bytes, name, "upgrade")
        {
            continue
        }
        if listed.contains(where: { sameBytesIgnoringCase(bytes, $0, name) }) { continue }
        kept.append(line.line)
    }
    return (kept, host, expectsContinue)
}

/// Whether `bytes[a]` and `bytes[b]` hold the same ASCII text, ignoring case.
func sameBytesIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ a: Range<Int>, _ b: Range<Int>) -> Bool {
    guard a.count == b.count else { return false }
    var j = b.lowerBound
    for i in a {
        if ASCII.lower(bytes[i]) != ASCII.lower(bytes[j]) { return false }
        j += 1
    }
    return true
}
