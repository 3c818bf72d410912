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

/// An incremental HTTP/1.1 request parser for the emulated backends, working directly on a `ByteBuffer`.
///
/// It checks the request line (`METHOD SP target SP HTTP/1.0|1.1`, RFC 9112 §3) as soon as it has arrived (so an
/// HTTP/0.9 `GET /` line is refused at once rather than waited on), the header syntax (CRLF line ends, token names,
/// no NUL or other controls in values), one `Host` (required on HTTP/1.1), the framing headers (`Transfer-Encoding`
/// must be exactly one `chunked`), caps the head at ``maxHeadBytes`` (``HTTPParseError/headerTooLarge``), and skips
/// any body (`Content-Length` or chunked). It reports whether the target's path equals the health path, so the
/// server never builds a `String` per request.
public struct HTTPRequestParser: Sendable {
    /// A complete request.
    public struct Request: Sendable, Equatable {
        /// The method is `HEAD` (the answer has no body).
        public var isHead: Bool
        /// The target's path (before any `?`) equals the health path.
        public var isHealthCheck: Bool
        /// Whether the client allows another request on the connection.
        public var keepAlive: Bool
        /// The target's path (before any `?`), when the parser was made with `capturesPath` (it allocates).
        public var path: String? = nil
    }

    /// The most bytes a request head may take.
    public let maxHeadBytes: Int
    private let healthPath: [UInt8]
    /// Whether each request's path is kept (for authorization).
    private let capturesPath: Bool
    private var body: BodySkipper
    private var pending: Request?
    private var scanned = 0
    /// The current request's start line has arrived and was checked.
    private var startLineChecked = false

    /// Creates a parser; `healthPath` is the path answered by the health endpoint; `capturesPath` keeps each
    /// request's path in ``Request/path``.
    public init(maxHeadBytes: Int = 8 * 1024, healthPath: String = "/health", capturesPath: Bool = false) {
        self.maxHeadBytes = maxHeadBytes
        self.healthPath = Array(healthPath.utf8)
        self.capturesPath = capturesPath
        self.body = BodySkipper(maxLineBytes: 4096)
    }

    /// Whether a request's head has been read and its body is still arriving.
    public var isReadingBody: Bool { pending != nil }

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
        let capturesPath = self.capturesPath
        guard
            let found = try scanHead(
                buffer,
                scanned: &scanned,
                maxHeadBytes: maxHeadBytes,
                parse: { (bytes, end) throws(HTTPParseError) in
                    try Self.parseHead(bytes, end: end, healthPath: healthPath, capturesPath: capturesPath)
                }
            )
        else {
            if !startLineChecked { try checkStartLine(buffer) }
            return nil
        }
        startLineChecked = false
        buffer.moveReaderIndex(forwardBy: found.length)
        body.state = found.head.1
        return found.head.0
    }

    /// Checks the start line of a head that has not fully arrived, once its line end is there.
    ///
    /// - Complexity: O(start line), only while a head is incomplete.
    private mutating func checkStartLine(_ buffer: ByteBuffer) throws(HTTPParseError) {
        startLineChecked = try Self.checkArrivedStartLine(buffer)
    }

    /// Whether the start line of a request head in `buffer` has arrived (empty lines before it skipped), checking it
    /// when it has: shared by the backends' parser and the proxy's head reader.
    ///
    /// - Complexity: O(start line).
    static func checkArrivedStartLine(_ buffer: ByteBuffer) throws(HTTPParseError) -> Bool {
        let result: Result<Bool, HTTPParseError> = buffer.withUnsafeReadableBytes { bytes in
            guard let base = bytes.baseAddress else { return .success(false) }
            var i = 0
            while i + 1 < bytes.count && bytes[i] == ASCII.cr && bytes[i + 1] == ASCII.lf { i += 2 }
            guard i < bytes.count, let found = memchr(base + i, Int32(ASCII.lf), bytes.count - i) else {
                return .success(false)
            }
            let lineEnd = base.distance(to: UnsafeRawPointer(found)) + 1
            do throws(HTTPParseError) {
                _ = try Self.parseStartLine(bytes, end: lineEnd)
                return .success(true)
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case .success(let checked): return checked
        case .failure(let error): throw error
        }
    }

    /// The parts of a request line.
    struct StartLine {
        var isHead: Bool
        var target: Range<Int>
        var http10: Bool
        /// Where the header lines start (past the line's CRLF).
        var headersStart: Int
    }

    /// Parses the request line at the start of `bytes` (after any empty lines), which must end with CRLF before `end`.
    ///
    /// - Complexity: O(line length), no allocation.
    static func parseStartLine(_ bytes: UnsafeRawBufferPointer, end: Int) throws(HTTPParseError) -> StartLine {
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
        // Version: exactly HTTP/1.0 or HTTP/1.1, then CRLF (an HTTP/0.9 line has no version and is refused).
        guard i + 9 < end, bytes[i] == 72, bytes[i + 1] == 84, bytes[i + 2] == 84, bytes[i + 3] == 80,
            bytes[i + 4] == 47, bytes[i + 5] == 49, bytes[i + 6] == 46,
            bytes[i + 7] == ASCII.zero || bytes[i + 7] == ASCII.zero + 1,
            bytes[i + 8] == ASCII.cr, bytes[i + 9] == ASCII.lf
        else { throw .malformedStartLine }
        return StartLine(
            isHead: isHead,
            target: targetStart..<targetEnd,
            http10: bytes[i + 7] == ASCII.zero,
            headersStart: i + 10
        )
    }

    private static func parseHead(_ bytes: UnsafeRawBufferPointer, end: Int, healthPath: [UInt8], capturesPath: Bool)
        throws(HTTPParseError) -> (Request, BodySkipper.State)
    {
        let line = try parseStartLine(bytes, end: end)
        let (isHead, http10) = (line.isHead, line.http10)
        let (targetStart, targetEnd) = (line.target.lowerBound, line.target.upperBound)
        let fields = try parseHeaderLines(bytes, from: line.headersStart, to: end)
        // RFC 9112 §3.2: an HTTP/1.1 request needs exactly one Host; any request with two is refused.
        if fields.hostLines > 1 || (!http10 && fields.hostLines == 0) { throw .invalidHost }
        // RFC 9112 §6.1: a server may refuse codings it does not understand; only `chunked`, once, is framed here.
        if fields.hasTransferEncoding && (fields.transferEncodingLines != 1 || !fields.chunkedOnly) {
            throw .unsupportedTransferEncoding
        }
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
        var request = Request(isHead: isHead, isHealthCheck: isHealth, keepAlive: keepAlive)
        if capturesPath {
            request.path = String(
                decoding: UnsafeRawBufferPointer(rebasing: bytes[targetStart..<pathEnd]),
                as: UTF8.self
            )
        }
        if fields.chunked { return (request, .chunkSize) }
        if let length = fields.contentLength, length > 0 { return (request, .fixed(remaining: length)) }
        return (request, .done)
    }
}
