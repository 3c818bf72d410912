//===----------------------------------------------------------------------===//
// meshsim — command line: the output folder
//===----------------------------------------------------------------------===//

import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
#if canImport(CoreFoundation)
    // With swift-nio-ssl in the graph, `stat` can resolve through CoreFoundation's copy of the C headers.
    import CoreFoundation
#endif

/// Makes sure the output folder `path` exists and can be written, before any work is done: creates it (and its
/// parents) and writes and removes a probe file in it.
///
/// A folder that cannot be used is found at once, not after a run of minutes whose results would then be lost.
/// - Throws: `ExitCode(64)` after printing a sentence that names the path and the reason (for example "Not a
///   directory", "Permission denied", "Read-only file system").
func prepareOutputFolder(_ path: String) throws {
    if let problem = outputFolderProblem(path) {
        printError("error: cannot use \(path) as the output folder: \(problem)")
        throw ExitCode(64)
    }
}

/// Why `path` cannot serve as an output folder, or `nil` when it can (it then exists).
func outputFolderProblem(_ path: String) -> String? {
    guard !path.isEmpty else { return "the path is empty" }
    guard !path.utf8.contains(0) else { return "the path contains a NUL byte" }
    // mkdir -p, one component at a time, so the failing component and errno are known.
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/", omittingEmptySubsequences: true) {
        prefix += component
        var info = stat()
        if stat(prefix, &info) == 0 {
            if (info.st_mode & S_IFMT) != S_IFDIR { return "\(prefix) exists and is not a folder" }
        } else if errno != ENOENT {
            return "\(prefix): \(String(cString: strerror(errno)))"
        } else if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
            return "cannot create \(prefix): \(String(cString: strerror(errno)))"
        }
        prefix += "/"
    }
    let probe = (path.hasSuffix("/") ? path : path + "/") + ".meshsim-write-probe-\(getpid())"
    let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { return "cannot write in it: \(String(cString: strerror(errno)))" }
    let written = write(fd, "x", 1)
    let writeErrno = errno
    close(fd)
    unlink(probe)
    if written != 1 { return "cannot write in it: \(String(cString: strerror(writeErrno)))" }
    return nil
}
