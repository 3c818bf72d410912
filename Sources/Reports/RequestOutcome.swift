//===----------------------------------------------------------------------===//
// meshsim — Reports
//===----------------------------------------------------------------------===//

/// How a client request ended.
public enum RequestOutcome: UInt8, Sendable, CaseIterable {
    /// A successful response.
    case ok
    /// An error response (a 500 from the service or a reset connection).
    case failed
    /// No response within the client's timeout.
    case timedOut
    /// Refused: a full queue (503), a refused connection, or no endpoint to send to.
    case rejected
}
