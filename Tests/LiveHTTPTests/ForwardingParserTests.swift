import LiveHTTP
import NIOCore
import Testing

@Suite("HTTP heads and bodies for a proxy")
struct ForwardingParserTests {
    /// The forwarded lines of `head` as text.
    private func lines(_ head: HTTPForwardHead) -> [String] { head.forwardedLines.map { head.string($0) } }

    @Test("a request head gives path, host, framing and the end-to-end lines, in pieces or whole")
    func requestHead() throws {
        let text =
            "\r\nPOST /a/b?q=1 HTTP/1.1\r\nHost: Example.org:81\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
            + "Keep-Alive: 5\r\nTE: trailers\r\nUpgrade: h2c\r\nProxy-Connection: x\r\nX-End: 2\r\nContent-Length: 3\r\n\r\nabc"
        for step in [1, 7, text.utf8.count] {
            var reader = HTTPHeadReader()
            var buffer = ByteBuffer()
            var head: HTTPForwardHead?
            var offset = 0
            let bytes = Array(text.utf8)
            while head == nil && offset < bytes.count {
                buffer.writeBytes(bytes[offset..<min(bytes.count, offset + step)])
                offset += step
                head = try reader.readRequestHead(&buffer)
            }
            let found = try #require(head)
            #expect(found.string(found.startLine) == "POST /a/b?q=1 HTTP/1.1")
            #expect(found.string(found.path) == "/a/b")
            #expect(found.host.map { found.string($0) } == "Example.org:81")
            #expect(found.framing == .contentLength(3))
            #expect(found.keepAlive && !found.isHTTP10 && !found.isHeadMethod)
            #expect(lines(found) == ["Host: Example.org:81\r\n", "X-End: 2\r\n", "Content-Length: 3\r\n"])
        }
    }

    @Test("framing fields survive a Connection header that names them")
    func framingNeverDropped() throws {
        var reader = HTTPHeadReader()
        var buffer = ByteBuffer(
            string: "POST / HTTP/1.1\r\nHost: a\r\nConnection: content-length, host\r\nContent-Length: 2\r\n\r\nhi"
        )
        let head = try #require(try reader.readRequestHead(&buffer))
        #expect(lines(head) == ["Host: a\r\n", "Content-Length: 2\r\n"])
    }

    @Test("Expect: 100-continue is flagged and left out of the forwarded lines")
    func expectContinue() throws {
        var reader = HTTPHeadReader()
        var buffer = ByteBuffer(
            string: "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx"
        )
        let head = try #require(try reader.readRequestHead(&buffer))
        #expect(head.expectsContinue)
        #expect(lines(head) == ["Host: a\r\n", "Content-Length: 1\r\n"])
    }

    @Test("more header lines than the cap is headerTooLarge")
    func headerCount() {
        var reader = HTTPHeadReader(maxHeadBytes: 8192, maxHeaderCount: 3)
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")
        #expect(throws: HTTPParseError.headerTooLarge) { try reader.readRequestHead(&buffer) }
    }

    @Test("response framing: HEAD, 204 and 304 have none, a bare response runs to the close, 1xx is skipped")
    func responseFraming() throws {
        func head(_ text: String, isHead: Bool = false) throws -> HTTPForwardHead? {
            var reader = HTTPHeadReader()
            var buffer = ByteBuffer(string: text)
            return try reader.readResponseHead(&buffer, requestWasHead: isHead)
        }
        #expect(try head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", isHead: true)?.framing == HTTPBodyFraming.none)
        #expect(try head("HTTP/1.1 204 No Content\r\n\r\n")?.framing == HTTPBodyFraming.none)
        let bare = try #require(try head("HTTP/1.1 200 OK\r\n\r\n"))
        #expect(bare.framing == .untilClose && !bare.keepAlive)
        let interim = try #require(
            try head("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n")
        )
        #expect(interim.status == 201 && interim.framing == .chunked)
        #expect(throws: HTTPParseError.unsupportedTransferEncoding) {
            try head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
        }
    }

    @Test("a body passes through unchanged in pieces and stops at its end")
    func bodyForwarder() throws {
        let body = "3\r\nabc\r\n0\r\nT: 1\r\n\r\n"
        var forwarder = HTTPBodyForwarder(.chunked)
        var passed = ""
        var buffer = ByteBuffer()
        for byte in body.utf8 {
            buffer.writeInteger(byte)
            var slice = try forwarder.take(&buffer)
            passed += slice.readString(length: slice.readableBytes) ?? ""
        }
        #expect(passed == body)
        #expect(forwarder.isComplete)
        var fixed = HTTPBodyForwarder(.contentLength(2))
        var next = ByteBuffer(string: "hiGET")
        var slice = try fixed.take(&next)
        #expect(slice.readString(length: slice.readableBytes) == "hi")
        #expect(next.readableBytes == 3 && fixed.isComplete)
        var bad = HTTPBodyForwarder(.chunked)
        var junk = ByteBuffer(string: "zz\r\n")
        #expect(throws: HTTPParseError.invalidChunk) { try bad.take(&junk) }
    }
}
