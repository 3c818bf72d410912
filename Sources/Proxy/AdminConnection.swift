//===----------------------------------------------------------------------===//
// meshsim — Proxy
//===----------------------------------------------------------------------===//

import LiveHTTP
import NIOCore

/// One connection to the admin listener: `GET /metrics` (Prometheus text format) and `GET /endpoints` (JSON), one
/// request per connection.
final class AdminConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: ProxyServer
    private var reader = HTTPHeadReader(maxHeadBytes: 8 * 1024, maxHeaderCount: 100)
    private var buffer = ByteBuffer()
    private var answered = false

    init(server: ProxyServer) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        let head: HTTPForwardHead?
        do {
            head = try reader.readRequestHead(&buffer)
        } catch {
            respond(context.channel, status: "400 Bad Request", type: "text/plain", body: "bad request\n")
            return
        }
        guard let head else { return }
        let path = head.string(head.path)
        let method = head.string(head.startLine).prefix { $0 != " " }
        guard method == "GET" || method == "HEAD" else {
            respond(context.channel, status: "405 Method Not Allowed", type: "text/plain", body: "GET only\n")
            return
        }
        switch path {
        case "/metrics":
            answered = true
            let channel = context.channel
            server.refreshedMetricsText().hop(to: context.eventLoop).whenComplete { [self] result in
                switch result {
                case .success(let text):
                    respond(channel, status: "200 OK", type: "text/plain; version=0.0.4", body: text)
                case .failure:
                    respond(channel, status: "500 Internal Server Error", type: "text/plain", body: "unavailable\n")
                }
            }
        case "/endpoints":
            answered = true
            let channel = context.channel
            server.endpoints().hop(to: context.eventLoop).whenComplete { [self] result in
                switch result {
                case .success(let report):
                    respond(channel, status: "200 OK", type: "application/json", body: report.json() + "\n")
                case .failure:
                    respond(channel, status: "500 Internal Server Error", type: "text/plain", body: "unavailable\n")
                }
            }
        default:
            respond(context.channel, status: "404 Not Found", type: "text/plain", body: "try /metrics or /endpoints\n")
        }
    }

    private func respond(_ channel: any Channel, status: String, type: String, body: String) {
        answered = true
        let text =
            "HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(body.utf8.count)\r\n"
            + "Connection: close\r\n\r\n\(body)"
        channel.writeAndFlush(ByteBuffer(string: text)).whenComplete { _ in channel.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
