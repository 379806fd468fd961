internal import LoyaltyCore

/// How stored entities become states again, the same for every backend: a backend only reads the rows (a member's
/// scope and the catalogue's `*`) and hands their entities here.
enum StoredEntities {
    /// A member's state from the entities of its scope and the catalogue's.
    static func memberState(_ id: MemberID, entities: [Entity]) throws -> MemberState {
        var program: Program?
        var record: MemberRecord?
        var others: [Entity] = []
        for entity in entities {
            switch entity {
            case .program(let value): program = value
            case .member(let value): record = value
            default: others.append(entity)
            }
        }
        guard let record else { throw LoyaltyError(.unknownMember, "there is no member \(id)") }
        guard let program else { throw LoyaltyError(.unusableStore, "the store has no programme") }
        var state = MemberState(program: program, member: record)
        for entity in others { state.merge(entity) }
        return state
    }

    /// The programme and the catalogue, from the catalogue's entities, as an operator's unit of work starts.
    static func catalogueWork(_ entities: [Entity]) throws -> CatalogueWork {
        var program: Program?
        var catalogue = Catalogue()
        for entity in entities {
            switch entity {
            case .program(let value): program = value
            case .offer(let value): catalogue.offers.append(value)
            case .reward(let value): catalogue.rewards.append(value)
            case .survey(let value): catalogue.surveys.append(value)
            default: continue
            }
        }
        guard let program else {
            throw LoyaltyError(.unusableStore, "the store has no programme: start the server once to load it")
        }
        return CatalogueWork(program: program, catalogue: catalogue)
    }
}
