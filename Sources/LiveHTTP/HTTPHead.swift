//===----------------------------------------------------------------------===//
// meshsim — LiveHTTP
//===----------------------------------------------------------------------===//

import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why a message could not be parsed; the server answers 400 (or 431 for ``headerTooLarge``) and closes.
public enum HTTPParseError: Error, Sendable, Equatable {
    /// The start line is not `METHOD SP target SP HTTP/1.x` (request) or `HTTP/1.x SP status …` (response).
    case malformedStartLine
    /// A header line has no colon, a space before it, or an empty name.
    case malformedHeader
    /// The head is longer than the configured maximum before its final empty line.
    case headerTooLarge
    /// `Content-Length` is not a decimal number, or two different ones were sent.
    case invalidContentLength
    /// A chunk-size line is not hexadecimal, or a chunk does not end with CRLF.
    case invalidChunk
    /// A transfer coding other than `chunked` as the last one, or both `Content-Length` and `Transfer-Encoding`; in
    /// a request, anything but one `Transfer-Encoding: chunked`.
    case unsupportedTransferEncoding
    /// A line ends in a bare LF instead of CRLF (RFC 9112 §2.2 lets a server refuse it; request smuggling hides there).
    case bareLineFeed
    /// An HTTP/1.1 request without `Host`, or a request with more than one (RFC 9112 §3.2: answer 400).
    case invalidHost
}

/// What the head of a message says about its framing and connection.
struct HeadFields {
    /// `Content-Length`, if sent.
    var contentLength: Int?
    /// Whether the last transfer coding is `chunked`.
    var chunked = false
    /// Whether any `Transfer-Encoding` was sent.
    var hasTransferEncoding = false
    /// `Connection: close` was sent.
    var close = false
    /// `Connection: keep-alive` was sent.
    var keepAlive = false
    /// `Transfer-Encoding` header lines.
    var transferEncodingLines = 0
    /// Every `Transfer-Encoding` line says exactly `chunked` (one coding).
    var chunkedOnly = true
    /// `Host` header lines.
    var hostLines = 0
}

/// ASCII byte constants.
enum ASCII {
    static let cr: UInt8 = 13
    static let lf: UInt8 = 10
    static let space: UInt8 = 32
    static let tab: UInt8 = 9
    static let colon: UInt8 = 58
    static let semicolon: UInt8 = 59
    static let zero: UInt8 = 48
    static let nine: UInt8 = 57

    /// Lower-cases an ASCII letter.
    @inline(__always)
    static func lower(_ byte: UInt8) -> UInt8 { byte >= 65 && byte <= 90 ? byte | 0x20 : byte }

    /// The value of a hexadecimal digit, or `nil`.
    @inline(__always)
    static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 48...57: return Int(byte - 48)
        case 65...70: return Int(byte - 55)
        case 97...102: return Int(byte - 87)
        default: return nil
        }
    }
}

/// What a scan for the end of a head found.
enum HeadScan {
    /// The head ends just before this index (past its `CRLF CRLF`).
    case end(Int)
    /// No complete head yet.
    case incomplete
    /// A line ends in LF without CR: the message is refused.
    case bareLineFeed
}

/// Finds the end of a head (the index just past `CRLF CRLF`), scanning from `start`; every LF on the way must follow a
/// CR.
///
/// - Complexity: O(n) in the bytes scanned (memchr from LF to LF); callers pass where the previous scan stopped so a
///   head that arrives in pieces is scanned about once.
@inline(__always)
func findHeadEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> HeadScan {
    guard let base = bytes.baseAddress else { return .incomplete }
    var i = max(start, 0)
    while i < bytes.count {
        guard let found = memchr(base + i, Int32(ASCII.lf), bytes.count - i) else { return .incomplete }
        let lf = base.distance(to: UnsafeRawPointer(found))
        guard lf > 0, bytes[lf - 1] == ASCII.cr else { return .bareLineFeed }
        if lf >= 3 && bytes[lf - 2] == ASCII.lf && bytes[lf - 3] == ASCII.cr { return .end(lf + 1) }
        i = lf + 1
    }
    return .incomplete
}

/// Whether `byte` may appear in a token (RFC 9110 §5.6.2): a method or a header name.
@inline(__always)
func isTokenCharacter(_ byte: UInt8) -> Bool {
    switch byte {
    case 48...57, 65...90, 97...122: return true
    case 33, 35, 36, 37, 38, 39, 42, 43, 45, 46, 94, 95, 96, 124, 126: return true
    default: return false
    }
}

/// Whether `bytes[range]` equals the lower-case ASCII `name`, ignoring case.
@inline(__always)
func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ name: StaticString) -> Bool {
    guard range.count == name.utf8CodeUnitCount else { return false }
    let pattern = name.utf8Start
    var j = 0
    for i in range {
        if ASCII.lower(bytes[i]) != pattern[j] { return false }
        j += 1
    }
    return true
}

/// Whether the comma-separated list in `bytes[range]` holds the token `token` (lower-case), ignoring case.
func listContains(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ token: StaticString) -> Bool {
    var start = range.lowerBound
    while start < range.upperBound {
        var end = start
        while end < range.upperBound && bytes[end] != 44 { end += 1 }
        var a = start
        var b = end
        while a < b && (bytes[a] == ASCII.space || bytes[a] == ASCII.tab) { a += 1 }
        while b > a && (bytes[b - 1] == ASCII.space || bytes[b - 1] == ASCII.tab) { b -= 1 }
        if equalsIgnoringCase(bytes, a..<b, token) { return true }
        start = end + 1
    }
    return false
}

/// Whether the last comma-separated token of `bytes[range]` is `token`, ignoring case.
func lastListToken(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, is token: StaticString) -> Bool {
    var b = range.upperBound
    while b > range.lowerBound && (bytes[b - 1] == ASCII.space || bytes[b - 1] == ASCII.tab) { b -= 1 }
    var a = b
    while a > range.lowerBound && bytes[a - 1] != 44 { a -= 1 }
    while a < b && (bytes[a] == ASCII.space || bytes[a] == ASCII.tab) { a += 1 }
    return equalsIgnoringCase(bytes, a..<b, token)
}

/// Parses the header lines in `bytes[start..<end]` (each ending in CRLF; `end` is just past the final empty line).
///
/// - Complexity: O(head length), no allocation.
func parseHeaderLines(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) throws(HTTPParseError)
    -> HeadFields
{
    var fields = HeadFields()
    var lineStart = start
    while lineStart < end - 2 {
        // The end of the line: the next CR (found with memchr), which must be followed by LF.
        guard let base = bytes.baseAddress,
            let cr = memchr(base + lineStart, Int32(ASCII.cr), end - lineStart)
        else { throw .malformedHeader }
        let lineEnd = base.distance(to: UnsafeRawPointer(cr))
        guard lineEnd + 1 < end, bytes[lineEnd + 1] == ASCII.lf else { throw .malformedHeader }
        // obs-fold (a line starting with white space) is rejected, as RFC 9112 §5.2 allows.
        if bytes[lineStart] == ASCII.space || bytes[lineStart] == ASCII.tab { throw .malformedHeader }
        // The name is a token (RFC 9110 §5.1): no white space, NUL, separators such as `(`.
        var colon = lineStart
        while colon < lineEnd && bytes[colon] != ASCII.colon {
            guard isTokenCharacter(bytes[colon]) else { throw .malformedHeader }
            colon += 1
        }
        guard colon < lineEnd, colon > lineStart else { throw .malformedHeader }
        var valueStart = colon + 1
        var valueEnd = lineEnd
        // The value holds visible characters, obs-text, SP and HTAB only (RFC 9110 §5.5): NUL and other controls
        // are refused, not passed on.
        for k in valueStart..<valueEnd {
            let byte = bytes[k]
            if (byte < ASCII.space && byte != ASCII.tab) || byte == 127 { throw .malformedHeader }
        }
        while valueStart < valueEnd && (bytes[valueStart] == ASCII.space || bytes[valueStart] == ASCII.tab) {
            valueStart += 1
        }
        while valueEnd > valueStart && (bytes[valueEnd - 1] == ASCII.space || bytes[valueEnd - 1] == ASCII.tab) {
            valueEnd -= 1
        }
        let name = lineStart..<colon
        switch colon - lineStart {
        case 14 where equalsIgnoringCase(bytes, name, "content-length"):
            guard valueEnd > valueStart, valueEnd - valueStart <= 18 else { throw .invalidContentLength }
            var value = 0
            for i in valueStart..<valueEnd {
                guard bytes[i] >= ASCII.zero && bytes[i] <= ASCII.nine else { throw .invalidContentLength }
                value = value * 10 + Int(bytes[i] - ASCII.zero)
            }
            if let previous = fields.contentLength, previous != value { throw .invalidContentLength }
            fields.contentLength = value
        case 17 where equalsIgnoringCase(bytes, name, "transfer-encoding"):
            fields.hasTransferEncoding = true
            fields.transferEncodingLines += 1
            fields.chunked = lastListToken(bytes, valueStart..<valueEnd, is: "chunked")
            if !equalsIgnoringCase(bytes, valueStart..<valueEnd, "chunked") { fields.chunkedOnly = false }
        case 4 where equalsIgnoringCase(bytes, name, "host"):
            fields.hostLines += 1
        case 10 where equalsIgnoringCase(bytes, name, "connection"):
            if listContains(bytes, valueStart..<valueEnd, "close") { fields.close = true }
            if listContains(bytes, valueStart..<valueEnd, "keep-alive") { fields.keepAlive = true }
        default:
            break
        }
        lineStart = lineEnd + 2
    }
    if fields.hasTransferEncoding {
        // RFC 9112 §6.1: a request whose final coding is not chunked cannot be framed; both headers is an attack.
        guard fields.chunked, fields.contentLength == nil else { throw .unsupportedTransferEncoding }
    }
    return fields
}

/// Skips a message body framed by `Content-Length` or chunked coding, across reads.
struct BodySkipper: Sendable {
    /// Where the skipper is in the body.
    enum State: Sendable, Equatable {
        /// No body left.
        case done
        /// `remaining` bytes of a Content-Length body.
        case fixed(remaining: Int)
        /// Expecting a chunk-size line.
        case chunkSize
        /// `remaining` bytes of chunk data, then CRLF.
        case chunkData(remaining: Int)
        /// The CRLF after chunk data.
        case chunkEnd
        /// Trailer lines after the last chunk, up to an empty line.
        case trailers
        /// The body runs to the end of the connection (a response with neither header).
        case untilClose
    }

    /// The current state.
    var state = State.done
    /// The most bytes a chunk-size or trailer line may take.
    let maxLineBytes: Int

    /// Consumes as much of the body as `buffer` holds; returns `true` when the body is complete.
    ///
    /// - Complexity: O(bytes consumed), no allocation.
    mutating func skip(_ buffer: inout ByteBuffer) throws(HTTPParseError) -> Bool {
        while true {
            switch state {
            case .done:
                return true
            case .untilClose:
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                return false
            case .fixed(let remaining):
                let n = min(remaining, buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: n)
                if n == remaining {
                    state = .done
                    return true
                }
                state = .fixed(remaining: remaining - n)
                return false
            case .chunkData(let remaining):
                let n = min(remaining, buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: n)
                if n < remaining {
                    state = .chunkData(remaining: remaining - n)
                    return false
                }
                state = .chunkEnd
            case .chunkEnd:
                guard buffer.readableBytes >= 2 else { return false }
                guard buffer.readInteger(as: UInt16.self) == 0x0D0A else { throw .invalidChunk }
                state = .chunkSize
            case .chunkSize:
                guard let line = try takeLine(&buffer) else { return false }
                var size = 0
                var digits = 0
                for byte in line.readableBytesView {
                    if byte == ASCII.semicolon || byte == ASCII.space || byte == ASCII.tab { break }
                    guard let value = ASCII.hexValue(byte), digits < 15 else { throw .invalidChunk }
                    size = size * 16 + value
                    digits += 1
                }
                guard digits > 0 else { throw .invalidChunk }
                state = size == 0 ? .trailers : .chunkData(remaining: size)
            case .trailers:
                guard let line = try takeLine(&buffer) else { return false }
                if line.readableBytes == 0 { state = .done }
            }
        }
    }

    /// Takes one CRLF-terminated line (without the CRLF), or `nil` when it has not fully arrived.
    private func takeLine(_ buffer: inout ByteBuffer) throws(HTTPParseError) -> ByteBuffer? {
        let view = buffer.readableBytesView
        guard let lf = view.firstIndex(of: ASCII.lf) else {
            if buffer.readableBytes > maxLineBytes { throw .invalidChunk }
            return nil
        }
        let length = lf - view.startIndex
        guard length >= 1, view[lf - 1] == ASCII.cr else { throw .invalidChunk }
        let line = buffer.readSlice(length: length - 1)!
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }
}

/// Finds a complete head in `buffer` (scanning from `scanned`) and parses it with `parse`.
///
/// Returns the head's length and what `parse` made of it, or `nil` when the head has not fully arrived (then
/// `scanned` is where the next scan may resume). Throws ``HTTPParseError/headerTooLarge`` once the head would exceed
/// `maxHeadBytes`, and whatever `parse` throws.
/// - Complexity: O(new bytes) per call, no allocation.
@inline(__always)
func scanHead<Head>(
    _ buffer: ByteBuffer,
    scanned: inout Int,
    maxHeadBytes: Int,
    parse: (UnsafeRawBufferPointer, Int) throws(HTTPParseError) -> Head
) throws(HTTPParseError) -> (length: Int, head: Head)? {
    let start = scanned
    let result: Result<(Int, Head)?, HTTPParseError> = buffer.withUnsafeReadableBytes { bytes in
        let end: Int
        switch findHeadEnd(bytes, from: start) {
        case .bareLineFeed:
            return .failure(.bareLineFeed)
        case .incomplete:
            if bytes.count > maxHeadBytes { return .failure(.headerTooLarge) }
            return .success(nil)
        case .end(let found):
            end = found
        }
        if end > maxHeadBytes { return .failure(.headerTooLarge) }
        do throws(HTTPParseError) {
            return .success((end, try parse(bytes, end)))
        } catch {
            return .failure(error)
        }
    }
    switch result {
    case .failure(let error):
        throw error
    case .success(nil):
        scanned = max(0, buffer.readableBytes - 3)
        return nil
    case .success(let found?):
        scanned = 0
        return found
    }
}
