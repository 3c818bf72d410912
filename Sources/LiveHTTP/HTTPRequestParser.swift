//===----------------------------------------------------------------------===//
// meshsim — LiveHTTP
//===----------------------------------------------------------------------===//

public import NIOCore

/// An incremental HTTP/1.1 request parser for the emulated backends, working directly on a `ByteBuffer`.
///
/// It checks the request line (`METHOD SP target SP HTTP/1.0|1.1`, RFC 9112 §3), the header syntax and the framing
/// headers, caps the head at ``maxHeadBytes`` (``HTTPParseError/headerTooLarge``), and skips any body
/// (`Content-Length` or chunked). It reports whether the target's path equals the health path, so the server never
/// builds a `String` per request.
public struct HTTPRequestParser: Sendable {
    /// A complete request.
    public struct Request: Sendable, Equatable {
        /// The method is `HEAD` (the answer has no body).
        public var isHead: Bool
        /// The target's path (before any `?`) equals the health path.
        public var isHealthCheck: Bool
        /// Whether the client allows another request on the connection.
        public var keepAlive: Bool
    }

    /// The most bytes a request head may take.
    public let maxHeadBytes: Int
    private let healthPath: [UInt8]
    private var body: BodySkipper
    private var pending: Request?
    private var scanned = 0

    /// Creates a parser; `healthPath` is the path answered by the health endpoint.
    public init(maxHeadBytes: Int = 8 * 1024, healthPath: String = "/health") {
        self.maxHeadBytes = maxHeadBytes
        self.healthPath = Array(healthPath.utf8)
        self.body = BodySkipper(maxLineBytes: 4096)
    }

    /// Parses the next complete request (head and body) from `buffer`; `nil` when more bytes are needed.
    ///
    /// - Complexity: O(bytes consumed), no allocation.
    public mutating func parse(_ buffer: inout ByteBuffer) throws(HTTPParseError) -> Request? {
        if pending == nil {
            guard let request = try parseHead(&buffer) else { return nil }
            pending = request
        }
        guard try body.skip(&buffer) else { return nil }
        defer { pending = nil }
        return pending
    }

    private mutating func parseHead(_ buffer: inout ByteBuffer) throws(HTTPParseError) -> Request? {
        let healthPath = self.healthPath
        guard
            let found = try scanHead(
                buffer,
                scanned: &scanned,
                maxHeadBytes: maxHeadBytes,
                parse: { (bytes, end) throws(HTTPParseError) in
                    try Self.parseHead(bytes, end: end, healthPath: healthPath)
                }
            )
        else { return nil }
        buffer.moveReaderIndex(forwardBy: found.length)
        body.state = found.head.1
        return found.head.0
    }

    private static func parseHead(_ bytes: UnsafeRawBufferPointer, end: Int, healthPath: [UInt8])
        throws(HTTPParseError) -> (Request, BodySkipper.State)
    {
        var i = 0
        while i + 1 < end && bytes[i] == ASCII.cr && bytes[i + 1] == ASCII.lf { i += 2 }
        // Method: a token of visible characters other than separators.
        let methodStart = i
        while i < end, isTokenCharacter(bytes[i]) { i += 1 }
        guard i > methodStart, i < end, bytes[i] == ASCII.space else { throw .malformedStartLine }
        let isHead =
            i - methodStart == 4 && bytes[methodStart] == 72 && bytes[methodStart + 1] == 69
            && bytes[methodStart + 2] == 65 && bytes[methodStart + 3] == 68
        i += 1
        // Target: visible ASCII up to the next space.
        let targetStart = i
        while i < end, bytes[i] > ASCII.space, bytes[i] < 127 { i += 1 }
        guard i > targetStart, i < end, bytes[i] == ASCII.space else { throw .malformedStartLine }
        let targetEnd = i
        i += 1
        // Version: exactly HTTP/1.0 or HTTP/1.1, then CRLF.
        guard i + 9 < end, bytes[i] == 72, bytes[i + 1] == 84, bytes[i + 2] == 84, bytes[i + 3] == 80,
            bytes[i + 4] == 47, bytes[i + 5] == 49, bytes[i + 6] == 46,
            bytes[i + 7] == ASCII.zero || bytes[i + 7] == ASCII.zero + 1,
            bytes[i + 8] == ASCII.cr, bytes[i + 9] == ASCII.lf
        else { throw .malformedStartLine }
        let http10 = bytes[i + 7] == ASCII.zero
        let fields = try parseHeaderLines(bytes, from: i + 10, to: end)
        var pathEnd = targetStart
        while pathEnd < targetEnd && bytes[pathEnd] != 63 { pathEnd += 1 }
        var isHealth = pathEnd - targetStart == healthPath.count
        if isHealth {
            for k in 0..<healthPath.count where bytes[targetStart + k] != healthPath[k] {
                isHealth = false
                break
            }
        }
        let keepAlive = http10 ? (fields.keepAlive && !fields.close) : !fields.close
        let request = Request(isHead: isHead, isHealthCheck: isHealth, keepAlive: keepAlive)
        if fields.chunked { return (request, .chunkSize) }
        if let length = fields.contentLength, length > 0 { return (request, .fixed(remaining: length)) }
        return (request, .done)
    }

    /// Whether `byte` may appear in a token (RFC 9110 §5.6.2).
    @inline(__always)
    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case 48...57, 65...90, 97...122: return true
        case 33, 35, 36, 37, 38, 39, 42, 43, 45, 46, 94, 95, 96, 124, 126: return true
        default: return false
        }
    }
}
