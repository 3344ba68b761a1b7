import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoMembershipStore } from '../adapters/dynamo-members.js';
import { CachedMemberRoster } from '../adapters/member-roster.js';
import { DynamoConnectionRegistry } from '../adapters/dynamo-registry.js';
import type { ConnectionRegistry, MemberRoster, MembershipStore } from '../ports.js';
import { systemClock } from './settings.js';

/** Conversation membership (DynamoDB). */
export function membershipStore(config: { MEMBERS_TABLE: string }, db: DynamoDBDocumentClient): MembershipStore {
  return new DynamoMembershipStore(db, config.MEMBERS_TABLE);
}

/** The membership as frames see it: re-read at least every MEMBERSHIP_CACHE_SECONDS. */
export function memberRoster(config: { MEMBERSHIP_CACHE_SECONDS: number }, members: Pick<MembershipStore, 'get' | 'list'>): MemberRoster {
  return new CachedMemberRoster(members, config.MEMBERSHIP_CACHE_SECONDS * 1000, systemClock);
}

/** Connections and their subscriptions (DynamoDB). */
export function connectionRegistry(config: { CONNECTIONS_TABLE: string }, db: DynamoDBDocumentClient): ConnectionRegistry {
  return new DynamoConnectionRegistry(db, config.CONNECTIONS_TABLE, systemClock);
}
