import { randomBytes, randomUUID, scrypt, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>
const KEY_LENGTH = 32

export interface User {
  id: string
  email: string
  passwordHash: string
}

/** Where the example keeps its users: memory for one process, Redis for several. */
export interface UserRegistry {
  create (email: string, passwordHash: string): Promise<User | null>
  findByEmail (email: string): Promise<User | null>
  findById (id: string): Promise<User | null>
  setPasswordHash (id: string, passwordHash: string): Promise<void>
  close? (): Promise<void>
}

/** scrypt with a random 16-byte salt, stored as `salt:hash` in base64url. */
export async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(16)
  const hash = await scryptAsync(password, salt, KEY_LENGTH)
  return `${salt.toString('base64url')}:${hash.toString('base64url')}`
}

export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const [salt, expected] = stored.split(':')
  const hash = await scryptAsync(password, Buffer.from(salt, 'base64url'), KEY_LENGTH)
  return timingSafeEqual(hash, Buffer.from(expected, 'base64url'))
}

/** A password hash no password matches: used so that an unknown email costs as much as a wrong password. */
export const DUMMY_PASSWORD_HASH = `${randomBytes(16).toString('base64url')}:${randomBytes(KEY_LENGTH).toString('base64url')}`

export class MemoryUserRegistry implements UserRegistry {
  readonly #byEmail = new Map<string, User>()
  readonly #byId = new Map<string, User>()

  async create (email: string, passwordHash: string): Promise<User | null> {
    if (this.#byEmail.has(email)) return null
    const user = { id: randomUUID(), email, passwordHash }
    this.#byEmail.set(email, user)
    this.#byId.set(user.id, user)
    return { ...user }
  }

  async findByEmail (email: string): Promise<User | null> {
    const user = this.#byEmail.get(email)
    return user === undefined ? null : { ...user }
  }

  async findById (id: string): Promise<User | null> {
    const user = this.#byId.get(id)
    return user === undefined ? null : { ...user }
  }

  async setPasswordHash (id: string, passwordHash: string): Promise<void> {
    const user = this.#byId.get(id)
    if (user !== undefined) user.passwordHash = passwordHash
  }
}
