//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

import LiveHTTP
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One keep-alive connection of the load generator: at most one request in flight, answers parsed by the lean
/// ``HTTPResponseParser`` straight from the read buffer.
final class LoadConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    unowned let worker: LoadWorker
    private var context: ChannelHandlerContext?
    private var parser = HTTPResponseParser()
    private var buffer = ByteBuffer()
    /// Whether a request is outstanding on it.
    private(set) var busy = false
    /// The outstanding request's intended send time (uptime ns).
    private(set) var intended: UInt64 = 0
    /// When it was written (uptime ns).
    private(set) var sentAt: UInt64 = 0
    /// Set when the request has been settled (timeout) and the connection is being closed.
    private var abandoned = false
    /// The error seen before the close, if any.
    private var lastError: LoadErrorKind?
    /// Whether the connection was established (the pool counts it).
    private(set) var established = false

    init(worker: LoadWorker) {
        self.worker = worker
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        established = true
        worker.connectionReady(self, fresh: true)
        context.fireChannelActive()
    }

    /// Writes the request intended at `intended` now.
    ///
    /// - Complexity: O(1); writes the pre-encoded request bytes (no encoding, no allocation).
    @inline(__always)
    func send(intended: UInt64, now: UInt64) {
        guard let context else { return }
        busy = true
        abandoned = false
        self.intended = intended
        sentAt = now
        context.writeAndFlush(wrapOutboundOut(worker.request), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffer.readableBytes == 0 {
            buffer = incoming
        } else {
            buffer.writeBuffer(&incoming)
        }
        while context.channel.isActive {
            let response: HTTPResponseParser.Response?
            do {
                response = try parser.parse(&buffer)
            } catch {
                lastError = .protocolError
                context.close(promise: nil)
                return
            }
            guard let response else { break }
            guard busy, !abandoned else {
                // An answer nobody asked for, or one that came after its timeout: the connection is unusable.
                context.close(promise: nil)
                return
            }
            busy = false
            worker.answered(self, status: response.status, keepAlive: response.keepAlive)
            if !response.keepAlive {
                context.close(promise: nil)
                return
            }
        }
        if buffer.readableBytes == 0 { buffer.clear() } else if buffer.readerIndex > 4096 { buffer.discardReadBytes() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        lastError = LoadWorker.classify(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if busy, !abandoned, let response = parser.connectionClosed() {
            busy = false
            worker.answered(self, status: response.status, keepAlive: false)
        }
        let wasBusy = busy && !abandoned
        busy = false
        self.context = nil
        worker.connectionClosed(self, hadRequest: wasBusy, error: lastError ?? .reset)
    }

    /// Gives up on the outstanding request (its timeout was counted) and closes the connection.
    func abandon() {
        abandoned = true
        busy = false
        context?.close(promise: nil)
    }

    /// Closes the connection at the end of the run.
    func close() {
        context?.close(promise: nil)
    }
}

extension LoadWorker {
    /// The error kind of a connect or socket error.
    static func classify(_ error: any Error) -> LoadErrorKind {
        if let io = error as? IOError {
            switch io.errnoCode {
            case ECONNREFUSED: return .refused
            case ECONNRESET, EPIPE, ECONNABORTED: return .reset
            case ETIMEDOUT: return .timeout
            default: return .connect
            }
        }
        if let connection = error as? NIOConnectionError {
            for failure in connection.connectionErrors { return classify(failure.error) }
            return .connect
        }
        if let channel = error as? ChannelError {
            switch channel {
            case .connectTimeout: return .timeout
            case .eof, .ioOnClosedChannel, .alreadyClosed, .outputClosed, .inputClosed: return .reset
            default: return .connect
            }
        }
        return .connect
    }
}
