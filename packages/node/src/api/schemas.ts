import { Type } from '@fastify/type-provider-typebox'

export const ErrorBody = Type.Object({
  error: Type.String({ description: 'stable error code, e.g. ERR_NOT_FOUND' }),
  message: Type.String()
}, { $id: 'Error' })

export const errorResponses = (...statuses: number[]): Record<number, typeof ErrorBody> =>
  Object.fromEntries(statuses.map(s => [s, ErrorBody]))
