// Service Bus Premium carrying the work between the webhook and the workers, with SAS (local) auth off
// and a copy in the paired region. Two ways to keep that copy, chosen by drMode:
//   geoReplication  one namespace replicated to the paired region, messages and metadata (preview);
//                   promotion moves the primary role, the host name stays the same.
//   geoDr           two namespaces paired under an alias, metadata only (GA); clients use the alias,
//                   messages in flight at failover stay behind in the old primary.
// the README (admin section) explains the trade-off.
@description('Region the namespace was created in; a geo-replicated namespace keeps it as its ARM location.')
@allowed([
  'northeurope'
  'westeurope'
])
param homeLocation string

@description('Region that currently holds the primary role.')
@allowed([
  'northeurope'
  'westeurope'
])
param primaryLocation string

@description('Region that holds the replica (geoReplication) or the paired namespace (geoDr).')
@allowed([
  'northeurope'
  'westeurope'
])
param secondaryLocation string

@allowed([
  'geoReplication'
  'geoDr'
])
param drMode string
param namespaceName string
param capacity int

@description('Queues as { name, requiresSession }.')
param queues array

@description('How long a receiver holds a message: the handler deadline, so a message is never handed to a second worker while the first may still finish it.')
param lockDuration string

@description('Largest replication lag accepted before the primary throttles senders (asynchronous replication).')
param maxReplicationLagSeconds int = 300
param workspaceId string
param tags object

var geoReplicated = drMode == 'geoReplication'

// With Geo-DR each namespace is named after its region and clients use the alias, which carries
// namespaceName; with geo-replication the single namespace carries it.
var primaryNamespaceName = geoReplicated ? namespaceName : '${namespaceName}-${primaryLocation}'
var partnerNamespaceName = '${namespaceName}-${secondaryLocation}'

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: primaryNamespaceName
  location: geoReplicated ? homeLocation : primaryLocation
  tags: tags
  sku: {
    name: 'Premium'
    tier: 'Premium'
    capacity: capacity
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    premiumMessagingPartitions: 1
    geoDataReplication: geoReplicated ? {
      maxReplicationLagDurationInSeconds: maxReplicationLagSeconds
      locations: [
        {
          locationName: primaryLocation
          roleType: 'Primary'
        }
        {
          locationName: secondaryLocation
          roleType: 'Secondary'
        }
      ]
    } : null
  }

  resource queue 'queues' = [for q in queues: {
    name: q.name
    properties: {
      lockDuration: lockDuration
      maxDeliveryCount: 10
      requiresDuplicateDetection: true
      duplicateDetectionHistoryTimeWindow: 'PT10M'
      deadLetteringOnMessageExpiration: true
      defaultMessageTimeToLive: 'P1D'
      maxSizeInMegabytes: 1024
      requiresSession: q.requiresSession
      enablePartitioning: false
    }
  }]
}

resource partner 'Microsoft.ServiceBus/namespaces@2024-01-01' = if (!geoReplicated) {
  name: partnerNamespaceName
  location: secondaryLocation
  tags: tags
  sku: {
    name: 'Premium'
    tier: 'Premium'
    capacity: capacity
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    premiumMessagingPartitions: 1
  }
}

// The alias replicates the queues (not their messages) to the empty partner namespace.
resource alias 'Microsoft.ServiceBus/namespaces/disasterRecoveryConfigs@2024-01-01' = if (!geoReplicated) {
  parent: namespace
  name: namespaceName
  properties: {
    partnerNamespace: partner.id
  }
  dependsOn: [
    namespace::queue
  ]
}

resource namespaceDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: namespace
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

resource partnerDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!geoReplicated) {
  name: 'to-log-analytics'
  scope: partner
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output namespaceName string = namespace.name
output partnerNamespaceName string = geoReplicated ? '' : partnerNamespaceName
@description('Host name clients connect to: the namespace itself, or the Geo-DR alias.')
output fullyQualifiedNamespace string = '${namespaceName}.servicebus.windows.net'
