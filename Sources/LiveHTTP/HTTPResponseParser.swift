//===----------------------------------------------------------------------===//
// meshsim — LiveHTTP
//===----------------------------------------------------------------------===//

public import NIOCore

/// An incremental HTTP/1.1 response parser that works directly on the bytes of a `ByteBuffer`.
///
/// The load generator's hot path: it reads the status code and the framing headers (`Content-Length`,
/// `Transfer-Encoding: chunked`, `Connection`) and skips everything else, body included, without allocating.
/// Framing follows RFC 9112 §6.3: 1xx, 204 and 304 responses have no body; a chunked body ends at the zero-size chunk
/// and its trailers; a body with neither header runs to the end of the connection (``connectionClosed()``).
/// Informational (1xx) responses are skipped.
public struct HTTPResponseParser: Sendable {
    /// A complete response.
    public struct Response: Sendable, Equatable {
        /// The status code.
        public var status: Int
        /// Whether the connection may carry another request (HTTP/1.1 without `Connection: close`, or HTTP/1.0
        /// with `Connection: keep-alive`).
        public var keepAlive: Bool
    }

    /// The most bytes a head may take.
    public let maxHeadBytes: Int
    private var body: BodySkipper
    private var pending: Response?
    private var scanned = 0

    /// Creates a parser that accepts heads up to `maxHeadBytes` long.
    public init(maxHeadBytes: Int = 64 * 1024) {
        self.maxHeadBytes = maxHeadBytes
        self.body = BodySkipper(maxLineBytes: 4096)
    }

    /// Whether the parser is in the middle of a response (some of its bytes have been consumed).
    public var isMidResponse: Bool { pending != nil || scanned > 0 }

    /// Parses the next response from `buffer`, consuming its bytes; `nil` when more bytes are needed.
    ///
    /// Call it again after a response while `buffer` still has bytes (a pipelined or early response).
    /// - Complexity: O(bytes consumed), no allocation.
    public mutating func parse(_ buffer: inout ByteBuffer) throws(HTTPParseError) -> Response? {
        while true {
            if let response = pending {
                guard try body.skip(&buffer) else { return nil }
                pending = nil
                return response
            }
            guard let head = try parseHead(&buffer) else { return nil }
            if head.status >= 100 && head.status < 200 { continue }
            pending = head
        }
    }

    /// Tells the parser the connection closed; returns the response whose body ran to the close, if any.
    public mutating func connectionClosed() -> Response? {
        defer { reset() }
        if let response = pending, body.state == .untilClose { return response }
        return nil
    }

    /// Forgets any partial response (for a new connection).
    public mutating func reset() {
        pending = nil
        scanned = 0
        body.state = .done
    }

    private mutating func parseHead(_ buffer: inout ByteBuffer) throws(HTTPParseError) -> Response? {
        guard let found = try scanHead(buffer, scanned: &scanned, maxHeadBytes: maxHeadBytes, parse: Self.parseHead)
        else { return nil }
        buffer.moveReaderIndex(forwardBy: found.length)
        body.state = found.head.1
        return found.head.0
    }

    /// Parses a status line, `HTTP/1.x SSS` and an optional reason phrase (RFC 9112 §4): the minor version's byte,
    /// the status (≥ 100), and where the line's CRLF begins. Shared by the load generator's parser and the proxy's
    /// head reader.
    ///
    /// - Complexity: O(status line).
    static func parseStatusLine(_ bytes: UnsafeRawBufferPointer, end: Int) throws(HTTPParseError) -> (
        minor: UInt8, status: Int, lineEnd: Int
    ) {
        guard end >= 16, bytes[0] == 72, bytes[1] == 84, bytes[2] == 84, bytes[3] == 80, bytes[4] == 47,
            bytes[5] == 49, bytes[6] == 46, bytes[8] == ASCII.space
        else { throw .malformedStartLine }
        let minor = bytes[7]
        guard minor == ASCII.zero || minor == ASCII.zero + 1 else { throw .malformedStartLine }
        var status = 0
        for i in 9..<12 {
            guard bytes[i] >= ASCII.zero && bytes[i] <= ASCII.nine else { throw .malformedStartLine }
            status = status * 10 + Int(bytes[i] - ASCII.zero)
        }
        guard status >= 100, bytes[12] == ASCII.space || bytes[12] == ASCII.cr else { throw .malformedStartLine }
        var lineEnd = 12
        while lineEnd + 1 < end && !(bytes[lineEnd] == ASCII.cr && bytes[lineEnd + 1] == ASCII.lf) { lineEnd += 1 }
        return (minor, status, lineEnd)
    }

    private static func parseHead(_ bytes: UnsafeRawBufferPointer, end: Int) throws(HTTPParseError) -> (
        Response, BodySkipper.State
    ) {
        let (minor, status, lineEnd) = try HTTPResponseParser.parseStatusLine(bytes, end: end)
        let fields = try parseHeaderLines(bytes, from: lineEnd + 2, to: end)
        let keepAlive = minor == ASCII.zero ? (fields.keepAlive && !fields.close) : !fields.close
        let response = Response(status: status, keepAlive: keepAlive)
        if status < 200 || status == 204 || status == 304 { return (response, .done) }
        if fields.chunked { return (response, .chunkSize) }
        if let length = fields.contentLength { return (response, length == 0 ? .done : .fixed(remaining: length)) }
        // Read to the end of the connection: it cannot be reused.
        return (Response(status: status, keepAlive: false), .untilClose)
    }
}
