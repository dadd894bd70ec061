// The application's table storage: tenant-partitioned state, geo-replicated to the paired region
// (RA-GZRS: zone-redundant in the primary, readable copy in the secondary), identity access only.
@description('Current primary region of the account. It changes after an account failover.')
@allowed([
  'northeurope'
  'westeurope'
])
param location string
param name string
param workspaceId string
param tags object

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_RAGZRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    // Infrastructure encryption can only be chosen when the account is created: data is encrypted twice,
    // with two keys and two algorithms, at the service and the infrastructure layer.
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }

  // The tables themselves are the application's: the handler creates its catalogue's tables at start
  // (tables.DB.EnsureTables) under the Storage Table Data Contributor role, which includes creating
  // tables, so a module's new table needs no change here.
  resource tableService 'tableServices' = {
    name: 'default'
  }
}

resource accountDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: account
  properties: {
    workspaceId: workspaceId
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

// Table logs record operations and caller identities, never entity contents.
resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: account::tableService
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
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

output name string = account.name
output id string = account.id
output tableEndpoint string = account.properties.primaryEndpoints.table
