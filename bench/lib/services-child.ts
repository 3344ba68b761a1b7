import { startDynalite, startSqsServer } from '../../local/services.js';

/**
 * dynalite and fauxqs in a process of their own: in AWS, DynamoDB and SQS do not run on the function's CPU, so
 * the bench keeps them off the event loop that runs the gateway and the handlers.
 */
const dynamo = await startDynalite();
const sqs = await startSqsServer();
process.send?.({ kind: 'services', dynamodb: dynamo.endpoint, sqs: sqs.endpoint });
process.on('disconnect', () => {
  void Promise.allSettled([dynamo.stop(), sqs.stop()]).finally(() => process.exit(0));
});
