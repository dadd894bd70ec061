// Shapes the rules must accept.
targetScope = 'subscription'

@description('Region of the pair to deploy.')
@allowed([
  'northeurope'
  'westeurope'
])
param region string

@allowed([
  'northeurope'
  'westeurope'
])
param paired string

var standby = region == 'northeurope' ? paired : region

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-example'
  location: (region)
}

module child '../bad/child.bicep' = {
  name: 'child'
  scope: group
  params: {
    primaryLocation: standby
  }
}

module registry 'br/public:avm/res/network/virtual-network:0.5.2' = {
  name: 'registry'
  scope: group
}

resource vaults 'Microsoft.KeyVault/vaults@2023-07-01' = [for i in range(0, 2): {
  name: 'kv-example-${i}'
  location: 'westeurope'
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enablePurgeProtection: true
  }
}]

resource profile 'Microsoft.Network/trafficmanagerprofiles@2022-04-01' = {
  name: 'tm-example'
  location: 'global'
}
