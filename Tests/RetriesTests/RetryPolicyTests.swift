//===----------------------------------------------------------------------===//
// meshsim — RetriesTests
//===----------------------------------------------------------------------===//

import Retries
import SimCore
import Testing

@Suite("RetryPolicy")
struct RetryPolicyTests {
    static let failures: [AttemptFailure] = [
        .httpStatus(500), .httpStatus(502), .httpStatus(503), .httpStatus(504), .httpStatus(599),
        .httpStatus(409), .httpStatus(429), .httpStatus(404), .reset, .connectFailure, .refusedStream,
        .perTryTimeout, .grpcStatus(.unavailable),
    ]

    /// The failures `retryOn` retries, among ``failures``.
    static func retried(_ retryOn: RetryOn, codes: [Int] = []) throws -> [AttemptFailure] {
        let policy = try RetryPolicy.envoy(numRetries: 1, retryOn: retryOn, retriableStatusCodes: codes)
        return failures.filter { policy.isRetryable($0) }
    }

    @Test("Envoy defaults: one retry, no per-try timeout, 25 ms / 250 ms jittered backoff")
    func envoyDefaults() throws {
        let policy = try RetryPolicy.envoy(retryOn: .fiveXX)
        #expect(policy.maxAttempts == 2 && policy.maxRetries == 1)
        #expect(policy.perTryTimeout == nil)
        #expect(policy.backoff == (try Backoff.envoy()))
        #expect(policy.backoff.cap == ms(250))
    }

    @Test("each Envoy retry_on condition retries what Envoy's docs say")
    func conditions() throws {
        let noResponse: [AttemptFailure] = [.reset, .connectFailure, .refusedStream, .perTryTimeout]
        #expect(
            try Self.retried(.fiveXX)
                == [.httpStatus(500), .httpStatus(502), .httpStatus(503), .httpStatus(504), .httpStatus(599)]
                + noResponse
        )
        #expect(try Self.retried(.gatewayError) == [.httpStatus(502), .httpStatus(503), .httpStatus(504)] + noResponse)
        #expect(try Self.retried(.reset) == noResponse)
        #expect(try Self.retried(.connectFailure) == [.connectFailure])
        #expect(try Self.retried(.refusedStream) == [.refusedStream])
        #expect(try Self.retried(.retriable4xx) == [.httpStatus(409)])
        #expect(try Self.retried(.timeout) == [.perTryTimeout])
        #expect(try Self.retried(.retriableStatusCodes, codes: [429, 503]) == [.httpStatus(503), .httpStatus(429)])
        #expect(try Self.retried(.retriableStatusCodes) == [])
        #expect(try Self.retried([]) == [])
        #expect(try Self.retried([.connectFailure, .retriable4xx]) == [.httpStatus(409), .connectFailure])
    }

    @Test("gRPC statuses are retried when listed; OK never")
    func grpcStatuses() throws {
        let policy = try RetryPolicy.grpc(
            maxAttempts: 3,
            initialBackoff: ms(100),
            maxBackoff: ms(1_000),
            backoffMultiplier: 2,
            retryableStatusCodes: GRPCStatusCodes([.unavailable, .resourceExhausted])
        )
        #expect(policy.isRetryable(.grpcStatus(.unavailable)))
        #expect(policy.isRetryable(.grpcStatus(.resourceExhausted)))
        #expect(!policy.isRetryable(.grpcStatus(.internal)))
        #expect(!policy.isRetryable(.grpcStatus(.ok)))
        #expect(!policy.isRetryable(.httpStatus(503)))
        #expect(!policy.isRetryable(.reset))
        #expect(policy.backoff.kind == .grpcRetry)
        let okListed = try RetryPolicy(
            maxAttempts: 2,
            retryableStatusCodes: GRPCStatusCodes([.ok, .unavailable]),
            backoff: try .envoy()
        )
        #expect(!okListed.isRetryable(.grpcStatus(.ok)))
    }

    @Test("shouldRetry stops at maxAttempts")
    func attempts() throws {
        let policy = try RetryPolicy.envoy(numRetries: 2, retryOn: .fiveXX)
        #expect(policy.shouldRetry(attempt: 1, failure: .httpStatus(503)))
        #expect(policy.shouldRetry(attempt: 2, failure: .httpStatus(503)))
        #expect(!policy.shouldRetry(attempt: 3, failure: .httpStatus(503)))
        #expect(!policy.shouldRetry(attempt: 1, failure: .httpStatus(404)))
        let none = try RetryPolicy.envoy(numRetries: 0, retryOn: .fiveXX)
        #expect(!none.shouldRetry(attempt: 1, failure: .httpStatus(503)))
    }

    @Test("gRPC maxAttempts is capped at 5 by default, or at the client's own cap")
    func grpcCap() throws {
        func policy(_ attempts: Int, cap: Int = 5, original: Bool = false) throws -> RetryPolicy {
            try RetryPolicy.grpc(
                maxAttempts: attempts,
                initialBackoff: ms(100),
                maxBackoff: ms(1_000),
                backoffMultiplier: 2,
                retryableStatusCodes: GRPCStatusCodes(.unavailable),
                originalJitter: original,
                maxCallAttempts: cap
            )
        }
        #expect(try policy(7).maxAttempts == 5)
        #expect(try policy(4).maxAttempts == 4)
        #expect(try policy(7, cap: 10).maxAttempts == 7)
        #expect(try policy(3, original: true).backoff.kind == .grpcRetryOriginal)
    }

    @Test("retry_on and status code lists parse from text; unknown names are reported with the valid ones")
    func parsing() throws {
        let parsed = try RetryOn.parse("5xx, gateway-error,reset,,retriable-4xx")
        #expect(parsed == [.fiveXX, .gatewayError, .reset, .retriable4xx])
        #expect(parsed.names == "5xx,gateway-error,reset,retriable-4xx")
        #expect(try RetryOn.parse(parsed.names) == parsed)
        #expect(try RetryOn.parse("") == [])
        let error = #expect(throws: PolicyParameterError.self) { try RetryOn.parse("5xx,conect-failure") }
        #expect(error?.parameter == "retry_on")
        #expect(error?.message.contains("did you mean 'connect-failure'?") == true)
        #expect(error?.message.contains("refused-stream") == true)

        let codes = try GRPCStatusCodes.parse("UNAVAILABLE, resource-exhausted,deadline_exceeded", parameter: "codes")
        #expect(codes == GRPCStatusCodes([.unavailable, .resourceExhausted, .deadlineExceeded]))
        #expect(codes.codes == [.deadlineExceeded, .resourceExhausted, .unavailable])
        #expect(GRPCStatusCode(name: "Unavailable") == .unavailable)
        #expect(GRPCStatusCode.unavailable.rawValue == 14 && GRPCStatusCode.unavailable.name == "UNAVAILABLE")
        let bad = #expect(throws: PolicyParameterError.self) {
            try GRPCStatusCodes.parse("UNAVAILABLE,UNAVAILBLE", parameter: "retryable_status_codes")
        }
        #expect(bad?.parameter == "retryable_status_codes")
        #expect(bad?.message.contains("did you mean 'UNAVAILABLE'?") == true)
    }

    @Test("a zero per-try timeout means none, as in Envoy")
    func zeroPerTryTimeout() throws {
        #expect(try RetryPolicy.envoy(retryOn: .fiveXX, perTryTimeout: .zero).perTryTimeout == nil)
        #expect(try RetryPolicy.envoy(retryOn: .fiveXX, perTryTimeout: ms(300)).perTryTimeout == ms(300))
    }

    @Test("impossible parameters throw PolicyParameterError naming the parameter")
    func badParameters() {
        func parameter(_ make: () throws -> RetryPolicy) -> String? {
            #expect(throws: PolicyParameterError.self) { _ = try make() }?.parameter
        }
        let codes = GRPCStatusCodes(.unavailable)
        #expect(parameter { try RetryPolicy.envoy(numRetries: -1, retryOn: .fiveXX) } == "num_retries")
        #expect(parameter { try RetryPolicy.envoy(retryOn: .fiveXX, perTryTimeout: ms(-1)) } == "per_try_timeout")
        #expect(
            parameter { try RetryPolicy.envoy(retryOn: .retriableStatusCodes, retriableStatusCodes: [503, 700]) }
                == "retriable_status_codes"
        )
        #expect(parameter { try RetryPolicy(maxAttempts: 0, backoff: try .envoy()) } == "max_attempts")
        #expect(
            parameter {
                try RetryPolicy.grpc(
                    maxAttempts: 1,
                    initialBackoff: ms(1),
                    maxBackoff: ms(2),
                    backoffMultiplier: 2,
                    retryableStatusCodes: codes
                )
            } == "max_attempts"
        )
        #expect(
            parameter {
                try RetryPolicy.grpc(
                    maxAttempts: 3,
                    initialBackoff: ms(1),
                    maxBackoff: ms(2),
                    backoffMultiplier: 2,
                    retryableStatusCodes: []
                )
            } == "retryable_status_codes"
        )
        #expect(
            parameter {
                try RetryPolicy.grpc(
                    maxAttempts: 3,
                    initialBackoff: ms(-1),
                    maxBackoff: ms(2),
                    backoffMultiplier: 2,
                    retryableStatusCodes: codes
                )
            } == "initial_backoff"
        )
        #expect(
            parameter {
                try RetryPolicy.grpc(
                    maxAttempts: 3,
                    initialBackoff: ms(1),
                    maxBackoff: ms(2),
                    backoffMultiplier: 0.5,
                    retryableStatusCodes: codes
                )
            } == "backoff_multiplier"
        )
        #expect(
            parameter {
                try RetryPolicy.grpc(
                    maxAttempts: 3,
                    initialBackoff: ms(1),
                    maxBackoff: ms(2),
                    backoffMultiplier: 2,
                    retryableStatusCodes: codes,
                    maxCallAttempts: 0
                )
            } == "max_call_attempts"
        )
    }
}
