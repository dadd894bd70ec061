// The vault for per-tenant data keys, refresh tokens and certificates. RBAC only (no access policies),
// purge protection on, deleted items kept 90 days, and a firewall that admits only the Function Apps'
// subnets (service endpoints) and the admins' addresses. Azure keeps a read-only copy in the paired
// region and fails the vault over itself; its URL does not change.
@allowed([
  'northeurope'
  'westeurope'
])
param location string
param name string

@description('Subnets of both regions\' Function Apps: objects { id, ignoreMissingVnetServiceEndpoint }.')
param subnetRules array

@description('Public IPv4 addresses or CIDR ranges of admin workstations.')
param allowedIpRanges array
param workspaceId string
param tags object

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // AzureServices lets App Service import the custom-domain certificate; nothing else bypasses.
      bypass: 'AzureServices'
      defaultAction: 'Deny'
      ipRules: [for range in allowedIpRanges: {
        value: range
      }]
      virtualNetworkRules: [for rule in subnetRules: {
        id: rule.id
        ignoreMissingVnetServiceEndpoint: rule.ignoreMissingVnetServiceEndpoint
      }]
    }
  }
}

resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vault
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

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
