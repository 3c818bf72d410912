import LiveHTTP
import NIOCore
import Testing

/// Feeds `text` into a buffer in pieces of `step` bytes, calling `drain` after each piece.
private func feed(_ text: String, step: Int, drain: (inout ByteBuffer) throws -> Void) rethrows {
    var buffer = ByteBuffer()
    let bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let end = min(bytes.count, offset + step)
        buffer.writeBytes(bytes[offset..<end])
        offset = end
        try drain(&buffer)
        buffer.discardReadBytes()
    }
}

/// Feeds `text` to a response parser in pieces of `step` bytes and collects the responses.
private func responses(_ text: String, step: Int, maxHead: Int = 64 * 1024) throws -> [HTTPResponseParser.Response] {
    var parser = HTTPResponseParser(maxHeadBytes: maxHead)
    var out: [HTTPResponseParser.Response] = []
    try feed(text, step: step) { buffer in
        while let response = try parser.parse(&buffer) { out.append(response) }
    }
    if let last = parser.connectionClosed() { out.append(last) }
    return out
}

/// Feeds `text` to a request parser in pieces and collects the requests.
private func requests(_ text: String, step: Int, maxHead: Int = 8192) throws -> [HTTPRequestParser.Request] {
    var parser = HTTPRequestParser(maxHeadBytes: maxHead)
    var out: [HTTPRequestParser.Request] = []
    try feed(text, step: step) { buffer in
        while let request = try parser.parse(&buffer) { out.append(request) }
    }
    return out
}

@Suite("HTTP response parser")
struct ResponseParserTests {
    static let pipeline =
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello"
        + "HTTP/1.1 100 Continue\r\n\r\n"
        + "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
        + "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;x=y\r\nhello\r\nA\r\n0123456789\r\n0\r\nT: 1\r\n\r\n"
        + "HTTP/1.1 204 No Content\r\n\r\n"
        + "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 3\r\n\r\nnop"
        + "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx"
        + "HTTP/1.0 500 Oops\r\n\r\nbody until close"

    @Test("framing by content-length, chunked, no body and close, in any split", arguments: [1, 2, 3, 7, 64, 4096])
    func framing(step: Int) throws {
        let got = try responses(Self.pipeline, step: step)
        #expect(got.map(\.status) == [200, 503, 200, 204, 404, 200, 500])
        #expect(got.map(\.keepAlive) == [true, true, true, true, false, true, false])
    }

    @Test("malformed responses are errors, not traps")
    func malformed() {
        for text in [
            "HTTX/1.1 200 OK\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc",
        ] {
            #expect(throws: HTTPParseError.self, "\(text)") { _ = try responses(text, step: 5) }
        }
    }

    @Test("a head over the cap is headerTooLarge even before it ends")
    func headCap() {
        let text = "HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 300)
        #expect(throws: HTTPParseError.headerTooLarge) { _ = try responses(text, step: 50, maxHead: 128) }
    }
}

@Suite("HTTP request parser")
struct RequestParserTests {
    @Test("requests with bodies, health paths and keep-alive, in any split", arguments: [1, 3, 16, 4096])
    func pipelined(step: Int) throws {
        let text =
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
            + "\r\nPOST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"
            + "GET /health?x=1 HTTP/1.1\r\nhost: a\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            + "HEAD /healthz HTTP/1.0\r\n\r\n"
            + "GET /health HTTP/1.1\r\nHOST: a\r\nConnection: close\r\n\r\n"
        let got = try requests(text, step: step)
        #expect(got.map(\.isHealthCheck) == [false, false, true, false, true])
        #expect(got.map(\.keepAlive) == [true, true, true, false, false])
        #expect(got.map(\.isHead) == [false, false, false, true, false])
    }

    @Test(
        "malformed requests are errors",
        arguments: [
            "GET\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "GET / HTTP/1.1 x\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", "GET / HTTP/1.1\r\n : x\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 12a\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nX: y\r\n folded\r\n\r\n",
        ]
    )
    func malformed(text: String) {
        #expect(throws: HTTPParseError.self) { _ = try requests(text, step: 4) }
    }

    /// Requests that were accepted or held open before; each is refused now, with the error it deserves.
    static let lenient: [(String, HTTPParseError)] = [
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1\r\nHost: a\r\nX\0A: b\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\u{7F}\r\n\r\n", .malformedHeader),
        ("GET / HTTP/1.1\r\nX-A: b\r\n\r\n", .invalidHost),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", .invalidHost),
        ("GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", .invalidHost),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .unsupportedTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", .unsupportedTransferEncoding),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            .unsupportedTransferEncoding
        ),
        ("GET / HTTP/1.1\nHost: a\n\n", .bareLineFeed),
        ("GET / HTTP/1.1\r\nHost: a\n\r\n", .bareLineFeed),
        ("GET /\r\n", .malformedStartLine),
        ("GET /\n", .bareLineFeed),
    ]

    @Test("NUL, non-token names, Host, codings other than one chunked, bare LF and HTTP/0.9 are refused at once")
    func leniency() throws {
        for (text, expected) in Self.lenient {
            for step in [1, 5, 4096] {
                #expect(throws: expected, "\(text.debugDescription) in steps of \(step)") {
                    _ = try requests(text, step: step)
                }
            }
        }
        // HTTP/1.0 needs no Host; one chunked coding, in any case, is fine.
        #expect(try requests("GET / HTTP/1.0\r\n\r\n", step: 3).count == 1)
        #expect(
            try requests("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  CHUNKED \r\n\r\n0\r\n\r\n", step: 3).count
                == 1
        )
    }

    @Test("a start line is checked as soon as it arrives, before the rest of the head")
    func earlyStartLine() throws {
        var parser = HTTPRequestParser()
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\n")
        #expect(try parser.parse(&buffer) == nil)
        var bad = HTTPRequestParser()
        var old = ByteBuffer(string: "GET /index.html\r\n")
        #expect(throws: HTTPParseError.malformedStartLine) { _ = try bad.parse(&old) }
    }

    @Test("the head size is capped")
    func cap() {
        let text = "GET / HTTP/1.1\r\nCookie: " + String(repeating: "c", count: 20_000) + "\r\n\r\n"
        #expect(throws: HTTPParseError.headerTooLarge) { _ = try requests(text, step: 1000) }
        #expect(throws: Never.self) { _ = try requests("GET / HTTP/1.1\r\nHost: a\r\nA: b\r\n\r\n", step: 1000) }
    }
}
