// libFuzzer entry for the `pkcs11:` URI parser and formatter (`make fuzz`, Tests/Fuzz/run.sh uri):
// compiled with Sources/P11ProxyConfig and FuzzSupport.swift by `swiftc -sanitize=fuzzer,address`.
// The input is the URI text. Every invariant below traps, which libFuzzer reports as a crash
// together with the input.

func parsed(_ text: String) -> Result<PKCS11URI, URIError> {
    do throws(URIError) {
        return .success(try PKCS11URI(parsing: text))
    } catch {
        return .failure(error)
    }
}

/// The parser on the raw input: deterministic; an error points inside the text with only ASCII
/// before it (URIError.position's promise); a URI that parses is written back as printable ASCII
/// that parses to the same URI and is written again unchanged.
func checkParser(_ text: String) {
    let result = parsed(text)
    require(result == parsed(text), "parse is not deterministic")
    switch result {
    case .failure(let error):
        require((0...text.utf8.count).contains(error.position), "offset \(error.position) outside \(text.utf8.count) bytes")
        if case .tooLong = error.problem {} else {
            require(text.utf8.prefix(error.position).allSatisfy { $0 < 0x80 }, "non-ASCII before offset \(error.position)")
        }
        require(!error.message.isEmpty, "empty message at offset \(error.position)")
    case .success(let uri):
        let formatted = uri.description
        require(formatted.utf8.allSatisfy { (0x21..<0x7F).contains($0) }, "formatted URI is not printable ASCII: \(formatted)")
        guard case .success(let again) = parsed(formatted) else {
            return require(false, "formatted URI does not parse: \(formatted)")
        }
        require(again == uri, "parse(format(x)) != x for \(formatted)")
        require(again.description == formatted, "formatting is not stable: \(formatted)")
        checkMatching(uri)
    }
}

/// The token a URI describes: its attributes, blank where it names none.
func ownToken(_ uri: PKCS11URI) -> TokenDescription {
    TokenDescription(
        library: .init(description: uri.libraryDescription ?? "", manufacturer: uri.libraryManufacturer ?? "",
                       version: uri.libraryVersion ?? .init(major: 0, minor: 0)),
        slot: .init(id: uri.slotID ?? 0, description: uri.slotDescription ?? "", manufacturer: uri.slotManufacturer ?? ""),
        token: .init(label: uri.token ?? "", manufacturer: uri.manufacturer ?? "", model: uri.model ?? "",
                     serial: uri.serial ?? ""))
}

/// A URI matches the token it describes, unless a vendor attribute makes it match nothing.
func checkMatching(_ uri: PKCS11URI) {
    let described = ownToken(uri)
    require(uri.matches(described) == uri.vendorAttributes.isEmpty, "does not match its own token: \(uri)")
    require(PKCS11URI().matches(described), "the empty URI does not match")
    require(PKCS11URI(token: described.token).matches(token: described.token), "a token's URI does not match it")
}

/// The formatter on values the parser would have to find first: the input as text and as id
/// bytes, in the path and the query.
func checkFormatter(_ bytes: [UInt8]) {
    let text = String(decoding: bytes, as: UTF8.self)
    var uri = PKCS11URI()
    uri.token = text
    uri.id = bytes
    uri.vendorAttributes = [PKCS11URI.Attribute(name: "x-f", value: text)]
    uri.pinSource = text
    uri.otherQueryAttributes = [PKCS11URI.Attribute(name: "q", value: text)]
    // Up to three bytes of text per input byte in five places: beyond the length limit only when
    // run with -max_len over ~4 KiB.
    let formatted = uri.description
    guard formatted.utf8.count <= PKCS11URI.maximumLength else { return }
    guard case .success(let again) = parsed(formatted) else {
        return require(false, "formatted URI does not parse: \(uri)")
    }
    require(again == uri, "parse(format(x)) != x for \(uri)")
}

/// The input as a token filter's value (x-only-tokens): every white-space-separated word either
/// becomes a URI or is one problem naming it, and the filter shows a token that each URI matches.
func checkFilter(_ text: String) {
    let words = text.utf8.split(whereSeparator: { $0 == 0x20 || (0x09...0x0D).contains($0) }).count
    let (uris, problems) = TokenFilter.parseURIs(text)
    require(uris.count + problems.count == words, "\(words) words, \(uris.count) URIs and \(problems.count) problems")
    for problem in problems { require(problem.hasPrefix("URI "), "problem does not name its URI: \(problem)") }
    for uri in uris where uri.vendorAttributes.isEmpty {
        let described = ownToken(uri)
        let filter = TokenFilter(rules: [.init(.only, [uri], origin: "fuzz")])
        require(filter.shows(library: described.library, slot: described.slot, token: described.token),
                "a filter hides the token its URI names: \(uri)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzURIParser(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    checkParser(String(decoding: bytes, as: UTF8.self))
    checkFormatter(bytes)
    checkFilter(String(decoding: bytes, as: UTF8.self))
    return 0
}
