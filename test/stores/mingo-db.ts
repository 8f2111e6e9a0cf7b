// An in-process stand-in for the part of the MongoDB driver's `Db`/`Collection` API the
// MongoDB store uses, whose query, projection, sort and update semantics come from
// mingo, an independent implementation of MongoDB's query language. It lets the store
// contract run without a server. It is not MongoDB: no wire protocol, no TTL monitor,
// no server-side validation; the integration suite (MONGODB_URL) is what shows the
// store works against a real server. Every call answers on a later turn of the event
// loop, so concurrent callers interleave as they would against a server.
import { setImmediate as nextTurn } from 'node:timers/promises'
import { find, updateOne } from 'mingo'
import type { Db } from 'mongodb'

type Doc = Record<string, unknown> & { _id: unknown }
type Filter = Record<string, unknown>

export class MingoCollection {
  readonly docs: Doc[] = []
  readonly indexes: unknown[] = []
  /** Calls made, by method name: how many round trips an operation costs. */
  readonly calls: string[] = []

  async #turn (method: string): Promise<void> {
    this.calls.push(method)
    await nextTurn()
  }

  #matching (filter: Filter, projection?: Record<string, unknown>, sort?: Record<string, 1 | -1>): Doc[] {
    const cursor = find(this.docs, filter, projection)
    return structuredClone((sort === undefined ? cursor : cursor.sort(sort)).all()) as Doc[]
  }

  async createIndexes (specs: unknown[]): Promise<string[]> {
    await this.#turn('createIndexes')
    this.indexes.push(...structuredClone(specs))
    return specs.map(spec => (spec as { name: string }).name)
  }

  async insertOne (doc: Doc): Promise<{ acknowledged: true, insertedId: unknown }> {
    await this.#turn('insertOne')
    if (this.docs.some(existing => existing._id === doc._id)) {
      throw Object.assign(new Error(`E11000 duplicate key error collection: _id ${String(doc._id)}`), { code: 11000 })
    }
    this.docs.push(structuredClone(doc))
    return { acknowledged: true, insertedId: doc._id }
  }

  find (filter: Filter, options: { projection?: Record<string, unknown>, sort?: Record<string, 1 | -1> } = {}): { toArray: () => Promise<Doc[]> } {
    return {
      toArray: async () => {
        await this.#turn('find')
        return this.#matching(filter, options.projection, options.sort)
      }
    }
  }

  async findOne (filter: Filter, options: { projection?: Record<string, unknown> } = {}): Promise<Doc | null> {
    await this.#turn('findOne')
    return this.#matching(filter, options.projection)[0] ?? null
  }

  async findOneAndUpdate (filter: Filter, update: Record<string, unknown>, options: { returnDocument?: 'before' | 'after', projection?: Record<string, unknown> } = {}): Promise<Doc | null> {
    await this.#turn('findOneAndUpdate')
    const target = find(this.docs, filter).all()[0] as Doc | undefined
    if (target === undefined) return null
    const before = structuredClone(target)
    updateOne(this.docs, { _id: target._id }, update)
    const doc = options.returnDocument === 'after' ? this.docs.find(d => d._id === target._id) as Doc : before
    return this.#project(doc, options.projection)
  }

  async findOneAndDelete (filter: Filter, options: { projection?: Record<string, unknown> } = {}): Promise<Doc | null> {
    await this.#turn('findOneAndDelete')
    const target = find(this.docs, filter).all()[0] as Doc | undefined
    if (target === undefined) return null
    this.docs.splice(this.docs.indexOf(target), 1)
    return this.#project(target, options.projection)
  }

  async deleteMany (filter: Filter): Promise<{ deletedCount: number }> {
    await this.#turn('deleteMany')
    const doomed = new Set(find(this.docs, filter).all())
    const before = this.docs.length
    this.docs.splice(0, this.docs.length, ...this.docs.filter(doc => !doomed.has(doc)))
    return { deletedCount: before - this.docs.length }
  }

  async countDocuments (filter: Filter): Promise<number> {
    await this.#turn('countDocuments')
    return find(this.docs, filter).all().length
  }

  #project (doc: Doc, projection?: Record<string, unknown>): Doc {
    return structuredClone(find([doc], {}, projection).all()[0]) as Doc
  }
}

/** A `Db` whose collections are MingoCollections. */
export class MingoDb {
  readonly collections = new Map<string, MingoCollection>()

  collection (name: string): MingoCollection {
    let collection = this.collections.get(name)
    if (collection === undefined) {
      collection = new MingoCollection()
      this.collections.set(name, collection)
    }
    return collection
  }

  asDb (): Db {
    return this as unknown as Db
  }
}
