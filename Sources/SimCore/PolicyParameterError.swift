//===----------------------------------------------------------------------===//
// meshsim — SimCore
//===----------------------------------------------------------------------===//

/// An impossible parameter given to a policy module (a negative window, a bias below 0, a table size that is not
/// prime…): thrown by the module's configuration initializer, never a trap, so a scenario loader can report it
/// with the key path of `parameter`.
public struct PolicyParameterError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The parameter's name as written in scenario files (snake_case, e.g. `budget_percent`).
    public var parameter: String
    /// What is wrong and what was expected.
    public var message: String

    /// Creates an error about `parameter`.
    public init(_ parameter: String, _ message: String) {
        self.parameter = parameter
        self.message = message
    }

    public var description: String { "\(parameter): \(message)" }
}
