import { ArnFormat, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { AccessLogFormat, CfnAccount } from 'aws-cdk-lib/aws-apigateway';
import { LogGroupLogDestination, WebSocketApi, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { ManagedPolicy, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { RouteSpec } from '../deploy/routes.js';
import { acknowledge } from './nag.js';

export interface RouteTarget {
  route: RouteSpec;
  handler: IFunction;
}

export interface WebSocketGatewayProps {
  name: string;
  stageName: string;
  routes: readonly RouteTarget[];
  throttleRate: number;
  throttleBurst: number;
  logRetention: RetentionDays;
  logRemovalPolicy: RemovalPolicy;
  /** Create API Gateway's account-level CloudWatch role (needed once per account and region for access logs). */
  createCloudWatchRole: boolean;
}

/** One JSON object per line, so CloudWatch Logs Insights can query the fields directly. */
export const ACCESS_LOG_FIELDS = {
  requestId: '$context.requestId',
  extendedRequestId: '$context.extendedRequestId',
  requestTime: '$context.requestTime',
  eventType: '$context.eventType',
  routeKey: '$context.routeKey',
  connectionId: '$context.connectionId',
  status: '$context.status',
  errorMessage: '$context.error.message',
  errorResponseType: '$context.error.responseType',
  integrationError: '$context.integration.error',
  integrationStatus: '$context.integration.status',
  integrationLatency: '$context.integrationLatency',
  sourceIp: '$context.identity.sourceIp',
} as const;

/** The WebSocket API: routes on `$request.body.action`, one Lambda integration per route, one stage. */
export class WebSocketGateway extends Construct {
  readonly api: WebSocketApi;
  readonly stage: WebSocketStage;
  readonly accessLogs: LogGroup;

  constructor(scope: Construct, id: string, props: WebSocketGatewayProps) {
    super(scope, id);
    this.api = new WebSocketApi(this, 'Api', {
      apiName: props.name,
      description: 'relay-ws real-time messaging',
      routeSelectionExpression: '$request.body.action',
    });
    for (const { route, handler } of props.routes) {
      const apiRoute = this.api.addRoute(route.routeKey, {
        integration: new WebSocketLambdaIntegration(`${route.name}Integration`, handler),
        // Two-way routes answer the sender with the handler's body (the reply frame).
        returnResponse: route.twoWay,
      });
      acknowledge(
        apiRoute,
        'AwsSolutions-APIG4',
        route.routeKey === '$connect'
          ? 'The $connect function verifies the token (HS256 or JWKS) and the membership and refuses with 401/403 before the socket opens.'
          : 'API Gateway runs authorizers on $connect only; this route serves a connection authenticated there, and its handler checks the registered binding.',
      );
    }

    this.accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    this.stage = new WebSocketStage(this, 'Stage', {
      webSocketApi: this.api,
      stageName: props.stageName,
      autoDeploy: true,
      throttle: { rateLimit: props.throttleRate, burstLimit: props.throttleBurst },
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogs),
        format: AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FIELDS)),
      },
    });

    if (props.createCloudWatchRole) {
      const role = new Role(this, 'CloudWatchRole', {
        assumedBy: new ServicePrincipal('apigateway.amazonaws.com'),
        description: 'Lets API Gateway write access logs to CloudWatch Logs (account-level setting)',
        managedPolicies: [ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs')],
      });
      acknowledge(
        role,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        'The AWS-maintained policy API Gateway documents for its account-level logging role; it covers log groups API Gateway names itself.',
      );
      // The setting is account-wide: destroying one stage must not leave the others pointing at a deleted role.
      role.applyRemovalPolicy(RemovalPolicy.RETAIN);
      const account = new CfnAccount(this, 'Account', { cloudWatchRoleArn: role.roleArn });
      this.stage.node.addDependency(account);
    }
  }

  /** The only Management API calls the functions make: POST to a connection of this stage. */
  get postToConnectionsArn(): string {
    return Stack.of(this).formatArn({
      service: 'execute-api',
      resource: this.api.apiId,
      resourceName: `${this.stage.stageName}/POST/@connections/*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
  }
}
