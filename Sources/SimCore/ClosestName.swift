//===----------------------------------------------------------------------===//
// meshsim — SimCore
//===----------------------------------------------------------------------===//

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely misspelling.
///
/// Used for "did you mean …?" suggestions on unknown keys, kinds and names.
public func closestName(to word: String, among candidates: [String]) -> String? {
    let limit = max(1, word.count / 3 + 1)
    var best: (name: String, distance: Int)?
    for candidate in candidates {
        let d = editDistance(word, candidate)
        if d <= limit && d < (best?.distance ?? Int.max) { best = (candidate, d) }
    }
    return best?.name
}

/// The Levenshtein distance between two strings (insertions, deletions and substitutions of characters).
public func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a)
    let y = Array(b)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var previous = Array(0...y.count)
    var current = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        current[0] = i
        for j in 1...y.count {
            let cost = x[i - 1] == y[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
        }
        swap(&previous, &current)
    }
    return previous[y.count]
}
